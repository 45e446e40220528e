"""Occupancy: how many blocks of a kernel one streaming multiprocessor (SM) holds at once.

Plain Python, no GPU needed. A block stays resident on an SM from its first instruction to its
last, and holds its warps' slots, its registers and its shared memory all that time; the SM takes
blocks until one of four resources runs out. **Occupancy** = resident warps / the SM's maximum.

The rules are those of NVIDIA's occupancy calculator (``cuda_occupancy.h`` in the CUDA toolkit,
the code behind ``cudaOccupancyMaxActiveBlocksPerMultiprocessor``), for compute capability 7.0+:

* **warps**: a block of T threads takes ceil(T / 32) warp slots;
* **blocks**: at most ``max_blocks`` resident blocks, whatever their size;
* **registers**: allocated per warp in units of 256 (``cudaOccRegAllocationGranularity``):
  R registers per thread cost roundup(32 R, 256) per warp. The register file is split into 4
  equal quarters, one per warp scheduler (``cudaOccSubPartitionsPerMultiprocessor``), and a warp's
  registers come from one quarter, so the SM holds floor(quarter / per-warp) * 4 warps' worth;
* **shared memory**: the block's own bytes plus 1 KB the system reserves per block from compute
  capability 8.0 on (``reservedSharedMemPerBlock``), rounded up to 128 bytes (256 on 7.x;
  ``cudaOccSMemAllocationGranularity``), out of the SM's shared memory at its largest carveout.

The per-SM limits below are from the CUDA C++ Programming Guide, "Technical Specifications per
Compute Capability" (and the compute capability 8.x/9.0 sections for the 1 KB reservation).
"""
from __future__ import annotations

from dataclasses import dataclass

KB = 1024


@dataclass(frozen=True)
class SM:
    """The per-SM limits of one GPU architecture (CUDA C++ Programming Guide, compute capabilities)."""

    name: str
    max_warps: int                 # resident warps per SM (threads per SM / 32)
    max_blocks: int                # resident blocks per SM
    registers: int = 64 * KB       # 32-bit registers per SM
    reg_unit: int = 256            # registers are allocated per warp in units of this many
    sub_partitions: int = 4        # register-file quarters, one per warp scheduler
    shared_bytes: int = 228 * KB   # shared memory per SM at the largest carveout
    shared_reserved: int = KB      # shared memory the system reserves per block
    shared_unit: int = 128         # shared memory is allocated in units of this many bytes
    max_threads_per_block: int = 1024
    max_regs_per_thread: int = 255


H100 = SM("H100 (compute capability 9.0)", max_warps=64, max_blocks=32, shared_bytes=228 * KB)
V100 = SM("V100 (compute capability 7.0)", max_warps=64, max_blocks=32, shared_bytes=96 * KB, shared_reserved=0,
          shared_unit=256)  # no per-block reservation before 8.0; 256-byte units on 7.x
A100 = SM("A100 (compute capability 8.0)", max_warps=64, max_blocks=32, shared_bytes=164 * KB)
RTX4090 = SM("RTX 4090 (compute capability 8.9)", max_warps=48, max_blocks=24, shared_bytes=100 * KB)


def _roundup(x: int, unit: int) -> int:
    return -(-x // unit) * unit


def block_limits(threads: int, regs_per_thread: int, shared_per_block: int, sm: SM = H100) -> dict[str, int]:
    """Resident blocks per SM that each resource alone would allow:
    {"warps": ..., "blocks": ..., "registers": ..., "shared memory": ...}."""
    if not 1 <= threads <= sm.max_threads_per_block:
        raise ValueError(f"threads per block must be in [1, {sm.max_threads_per_block}], got {threads}")
    if not 1 <= regs_per_thread <= sm.max_regs_per_thread:
        raise ValueError(f"registers per thread must be in [1, {sm.max_regs_per_thread}], got {regs_per_thread}")
    if not 0 <= shared_per_block <= sm.shared_bytes - sm.shared_reserved:
        raise ValueError(f"shared memory per block must be in [0, {sm.shared_bytes - sm.shared_reserved}] bytes, "
                         f"got {shared_per_block}")
    warps = -(-threads // 32)
    per_warp = _roundup(32 * regs_per_thread, sm.reg_unit)
    quarter = sm.registers // sm.sub_partitions
    reg_warps = (quarter // per_warp) * sm.sub_partitions
    shared = _roundup(shared_per_block + sm.shared_reserved, sm.shared_unit)
    by_shared = sm.shared_bytes // shared if shared else sm.max_blocks  # no shared memory: no limit
    return {"warps": sm.max_warps // warps, "blocks": sm.max_blocks,
            "registers": reg_warps // warps, "shared memory": by_shared}


def resident_blocks(threads: int, regs_per_thread: int, shared_per_block: int, sm: SM = H100) -> int:
    """Blocks of this kernel one SM holds at once: the smallest of the four limits."""
    return min(block_limits(threads, regs_per_thread, shared_per_block, sm).values())


def occupancy(threads: int, regs_per_thread: int, shared_per_block: int, sm: SM = H100) -> tuple[int, float]:
    """(resident blocks per SM, occupancy = resident warps / sm.max_warps)."""
    blocks = resident_blocks(threads, regs_per_thread, shared_per_block, sm)
    return blocks, blocks * -(-threads // 32) / sm.max_warps
