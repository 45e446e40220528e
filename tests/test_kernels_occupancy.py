"""kernels.occupancy against NVIDIA's published numbers and the calculator's rules."""
import pytest

from kernels.occupancy import A100, H100, RTX4090, V100, block_limits, occupancy, resident_blocks


def test_the_best_practices_guide_example():
    """CUDA C++ Best Practices Guide, "Calculating Occupancy": on compute capability 7.0, 128-thread
    blocks with 37 registers per thread reach 75% with 12 resident blocks; 320-thread blocks with the
    same registers only 4 blocks, 63%."""
    assert occupancy(128, 37, 0, V100) == (12, 0.75)
    blocks, occ = occupancy(320, 37, 0, V100)
    assert (blocks, occ) == (4, 0.625)  # the guide rounds 62.5% to 63%


def test_each_limit_binds_somewhere_on_an_h100():
    assert block_limits(256, 32, 0, H100) == {"warps": 8, "blocks": 32, "registers": 8, "shared memory": 228}
    assert occupancy(256, 32, 0, H100) == (8, 1.0)
    assert occupancy(32, 16, 0, H100) == (32, 0.5)  # tiny blocks: the 32-block limit binds
    assert block_limits(256, 64, 48 * 1024)["registers"] == 4  # 2048 registers per warp: 8 warps per quarter
    assert block_limits(256, 64, 48 * 1024)["shared memory"] == 4  # (48 + 1) KB per block out of 228 KB
    assert occupancy(128, 16, 100 * 1024, H100) == (2, 0.125)


def test_register_granularity_and_the_register_file_quarters():
    # 33 registers cost 1056 -> 1280 per warp: 12 warps per quarter, 48 per SM
    assert block_limits(64, 33, 0, H100)["registers"] == 24
    # 1024 threads x 64 registers fill the file exactly; 65 registers do not fit at all
    assert resident_blocks(1024, 64, 0, H100) == 1
    assert resident_blocks(1024, 65, 0, H100) == 0
    # 40 registers: 1280 per warp, 12 warps per quarter = 48 warps, not 65536 // 1280 = 51
    assert block_limits(32, 40, 0, H100)["registers"] == 48


def test_shared_memory_reservation_and_units():
    assert block_limits(128, 32, 0, A100)["shared memory"] == 164  # 1 KB reserved per block
    assert block_limits(128, 32, 1, A100)["shared memory"] == 164 * 1024 // 1152  # 1025 -> 1152 bytes
    assert block_limits(128, 32, 227 * 1024, H100)["shared memory"] == 1
    assert block_limits(128, 32, 99 * 1024, RTX4090)["shared memory"] == 1
    assert occupancy(1024, 32, 0, RTX4090) == (1, 32 / 48)  # 48 warps per SM: a 1024-thread block leaves 16


@pytest.mark.parametrize("args", [(0, 32, 0), (1025, 32, 0), (128, 0, 0), (128, 256, 0), (128, 32, 227 * 1024 + 1)])
def test_out_of_range_configurations_are_rejected(args):
    with pytest.raises(ValueError):
        block_limits(*args, H100)
