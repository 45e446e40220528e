"""course.prune.curves (accuracy against sparsity per method, before and after fine-tuning) and
its picture, course.viz.prune. Small budget: two levels, one epoch on 400 training rows."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import pytest  # noqa: E402

from course import prune as P  # noqa: E402
from course.models import digits_model_path, load_digits_split, train_digits  # noqa: E402
from course.quant import qat  # noqa: E402

LEVELS = (0.6, 0.9)
SPLIT = load_digits_split()
DIGITS = onnx.load(str(digits_model_path()))
# the digits CNN's weight tensors (conv1, conv2, fc1, fc2): 144 + 4608 + 32768 + 640
SIZES = {0: 16 * 9, 3: 32 * 16 * 9, 8: 64 * 512, 10: 10 * 64}
TOTAL = sum(SIZES.values())


def to_layers(model):
    return qat.load_onnx_weights(train_digits.build_network(0), model)


def adam(layers):
    return train_digits.Adam(layers, 1e-3)


@pytest.fixture(scope="module")
def curves():
    return P.sparsity_curves(DIGITS, to_layers, SPLIT, adam, train_digits.softmax_xent, levels=LEVELS,
                             budget=P.Budget(epochs=1, n_train=400))


def test_every_method_has_its_points(curves):
    assert list(curves) == list(P.METHODS)
    for method, points in curves.items():
        assert [p.level for p in points] == ([0.5] if method == "2:4" else list(LEVELS))
        for p in points:
            assert 0.0 <= p.pruned <= 1.0 and 0.0 <= p.finetuned <= 1.0


def test_magnitude_levels_are_reached_and_held_through_fine_tuning(curves):
    # the sparsity is measured after fine-tuning: the masks kept the pruned weights at zero
    for p in curves["magnitude (global)"]:
        assert p.sparsity == pytest.approx(round(p.level * TOTAL) / TOTAL, abs=1e-12)
    for p in curves["magnitude (per layer)"]:
        per_layer = sum(round(p.level * n) for n in SIZES.values()) / TOTAL
        assert p.sparsity == pytest.approx(per_layer, abs=1e-12)
    (p24,) = curves["2:4"]
    assert p24.sparsity == pytest.approx((TOTAL - SIZES[0]) / 2 / TOTAL)  # conv1 (1 input channel) dense


def test_l1_filters_remove_the_channels_and_the_next_layers_inputs(curves):
    for p in curves["L1 filters"]:
        c1, c2 = P.keep_count(16, 1 - p.level), P.keep_count(32, 1 - p.level)
        kept = c1 * 9 + c2 * c1 * 9 + 64 * c2 * 16 + 640  # fc1 reads 4x4 pixels per conv2 channel
        assert p.sparsity == pytest.approx(1 - kept / TOTAL)
    layers, masks = P.curves.prune_point("L1 filters", 0.5, DIGITS, to_layers)
    assert masks == {}
    assert [layers[i].params["W"].shape for i in SIZES] == [(8, 1, 3, 3), (16, 8, 3, 3), (64, 256), (10, 64)]


def test_fine_tuning_recovers_at_high_sparsity(curves):
    for method, points in curves.items():
        worst = points[-1]
        assert worst.finetuned >= worst.pruned - 0.02, method  # 0.02: noise of one short epoch
    # at 90% the cut alone breaks per-layer pruning (chance level); one short epoch brings much back
    high = curves["magnitude (per layer)"][-1]
    assert high.pruned < 0.3 and high.finetuned > high.pruned + 0.2
    assert curves["magnitude (global)"][0].pruned > 0.9  # 60% global costs little even uncut


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown pruning method"):
        P.sparsity_curves(DIGITS, to_layers, SPLIT, adam, train_digits.softmax_xent, methods=("random",))


def test_the_picture_has_a_dashed_and_a_solid_line_per_method(curves):
    from course.viz.prune import draw_sparsity_curves

    ax = draw_sparsity_curves(curves, float_accuracy=0.99)
    lines = {l.get_label(): l for l in ax.get_lines()}
    assert len(ax.get_lines()) == 2 * len(curves) + 1  # + the unpruned accuracy
    for method, points in curves.items():
        before, after = lines[f"{method}, no fine-tuning"], lines[f"{method}, fine-tuned"]
        assert before.get_linestyle() == "--" and after.get_linestyle() == "-"
        assert before.get_color() == after.get_color()
        order = np.argsort([p.sparsity for p in points])
        np.testing.assert_allclose(after.get_xdata(), [100 * points[i].sparsity for i in order])
        np.testing.assert_allclose(before.get_ydata(), [100 * points[i].pruned for i in order])
        np.testing.assert_allclose(after.get_ydata(), [100 * points[i].finetuned for i in order])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:len(curves)] == list(curves) and "no fine-tuning" in legend and "fine-tuned" in legend
    assert len({l.get_color() for l in ax.get_lines()[:-1]}) == len(curves)
    plt.close("all")
