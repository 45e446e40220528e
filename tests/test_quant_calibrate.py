"""Calibrators on constructed data, and calibration of the digits model through the engine."""
from __future__ import annotations

import numpy as np
import pytest

from course.models.digits import digits_model_path, load_digits_split
from course.quant import ArrayDataReader, CalibrationMethod, calibrate, create_calibrator
from course.quant.entropy import entropy_threshold, expand_quantized, kl_divergence
from course.quant.histogram import AbsHistogram


def _outlier_heavy(seed=0, n=200_000):
    x = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
    x[:3] = [40.0, -35.0, 50.0]  # 3 values in 200000 (0.0015 %) stretch the range 10x
    return x


def _ranges(method, *batches, **options):
    cal = create_calibrator(method, **options)
    for b in batches:
        cal.collect("t", b)
    return cal.compute_ranges()["t"]


def test_min_max_is_the_exact_range_over_batches():
    x = _outlier_heavy()
    r = _ranges(CalibrationMethod.MinMax, x[:1000], x[1000:])
    assert (r.rmin, r.rmax) == (float(x.min()), float(x.max()))


def test_percentile_ignores_rare_outliers():
    x = _outlier_heavy()
    r = _ranges(CalibrationMethod.Percentile, x, percentile=99.99)
    assert 3.0 < r.rmax < 5.0 and -5.0 < r.rmin < -3.0


def test_entropy_clips_an_outlier_heavy_histogram():
    r = _ranges(CalibrationMethod.Entropy, _outlier_heavy())
    assert 2.5 < r.rmax < 8.0 and r.rmin == -r.rmax  # a signed tensor: the threshold both ways


def test_entropy_of_relu_output_is_non_negative_and_below_the_max():
    x = np.maximum(_outlier_heavy(1), 0)
    r = _ranges(CalibrationMethod.Entropy, x)
    assert r.rmin == 0.0 and 2.0 < r.rmax < 10.0


def test_mse_threshold_sits_between_the_bulk_and_the_max_of_a_long_tail():
    x = np.random.default_rng(2).laplace(size=100_000).astype(np.float32)
    r = _ranges(CalibrationMethod.MSE, x)
    assert 4.0 < r.rmax < float(x.max())


def test_kl_without_folding_the_clipped_mass_would_pick_the_smallest_threshold():
    hist = np.random.default_rng(0).poisson(100, 2048).astype(np.float64)
    folded = entropy_threshold(hist, 1.0, 128)
    assert folded > 1500  # a flat histogram: clipping any of it costs
    unfolded = min(range(128, 2049), key=lambda i: kl_divergence(hist[:i], expand_quantized(hist[:i], 128)))
    assert unfolded < 200  # what a KL that forgets the clipped mass chooses


def test_expand_quantized_spreads_each_chunk_over_its_nonzero_bins():
    src = np.float64([4, 0, 2, 2, 0, 0, 1, 3])
    np.testing.assert_allclose(expand_quantized(src, 2), [8 / 3, 0, 8 / 3, 8 / 3, 0, 0, 2, 2])


def test_histogram_widening_keeps_every_count():
    h = AbsHistogram(64)
    h.add(np.linspace(-1, 1, 1000))
    h.add(np.linspace(0, 10, 500))
    assert h.counts.sum() == pytest.approx(1500) and h.amax == 10.0 and (h.min, h.max) == (-1.0, 10.0)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="not supported"):
        create_calibrator(CalibrationMethod.Distribution)


def test_calibrate_runs_the_digits_model_through_the_engine():
    x = load_digits_split().x_train[:64]
    ranges = calibrate(str(digits_model_path()), ArrayDataReader("input", x, 16), CalibrationMethod.MinMax,
                       ["input", "r1", "logits"])
    assert ranges["input"] == (0.0, float(x.max()))
    assert ranges["r1"].rmin == 0.0 and ranges["r1"].rmax > 0.5
    assert ranges["logits"].rmin < 0 < ranges["logits"].rmax


def test_entropy_keeps_the_whole_range_of_values_on_a_grid():
    # 33 values k/16 in [-1, 1]: 2048 bins of which 17 are full. Smoothing every empty bin of Q
    # charged wide candidates EPS per empty bin and clipped this to [-1/16, 1/16].
    x = np.random.default_rng(0).integers(-16, 17, 100_000).astype(np.float32) / 16
    r = _ranges(CalibrationMethod.Entropy, x)
    assert (r.rmin, r.rmax) == (-1.0, 1.0)


def test_kl_smooths_only_where_q_is_empty_and_p_is_not():
    p = np.float64([1, 1, 0, 0, 0, 0])
    assert kl_divergence(p, p.copy()) == 0.0  # Q's empty bins under empty P cost nothing
    assert np.isfinite(kl_divergence(p, np.float64([1, 0, 0, 0, 0, 0])))


def test_exact_zeros_are_left_out_of_the_entropy_histogram():
    h = AbsHistogram(256)
    h.add(np.concatenate([np.zeros(5000), np.linspace(0.01, 1, 1000)]))
    assert h.zeros == 5000.0
    from course.quant.calibrate import nonzero_counts

    assert nonzero_counts(h)[0] == pytest.approx(h.counts[0] - 5000)
