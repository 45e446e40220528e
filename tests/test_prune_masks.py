"""course.prune.masks and storage: magnitude and 2:4 masks, L1 ranking, CSR and 2:4 formats."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from course import prune as P

_floats = st.floats(-10, 10, allow_nan=False, width=32)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 9)), elements=_floats), st.floats(0, 1))
def test_magnitude_mask_prunes_the_smallest(w, s):
    m = P.magnitude_mask(w, s)
    k = int(np.rint(s * w.size))
    assert m.dtype == bool and m.shape == w.shape and (~m).sum() == k
    if 0 < k < w.size:
        assert np.abs(w[~m]).max() <= np.abs(w[m]).min()


def test_magnitude_mask_ties_and_rounding():
    assert P.magnitude_mask(np.array([1.0, -1.0, 1.0, 5.0]), 0.5).tolist() == [False, False, True, True]
    assert P.magnitude_mask(np.arange(1.0, 11.0), 0.25).sum() == 8  # rint(2.5) = 2
    with pytest.raises(ValueError):
        P.magnitude_mask(np.ones(3), 1.5)


def test_global_masks_rank_across_tensors():
    w = {"a": np.array([0.1, 0.2, 0.3]), "b": np.array([5.0, 6.0, 0.05])}
    m = P.global_magnitude_masks(w, 0.5)
    assert m["a"].tolist() == [False, False, True] and m["b"].tolist() == [True, True, False]


@settings(max_examples=30, derandomize=True, deadline=None)
@given(st.integers(1, 5), st.integers(1, 4), st.booleans(), st.integers(0, 2**31 - 1))
def test_mask_2_4_along_the_input_axis(rows, groups, conv, seed):
    g = np.random.default_rng(seed)
    w = g.normal(size=(rows, 4 * groups, 3, 3) if conv else (rows, 4 * groups))
    m = P.mask_2_4(w)
    assert m.shape == w.shape
    grouped = np.moveaxis(m, 1, -1).reshape(-1, groups, 4) if conv else m.reshape(rows, groups, 4)
    assert (grouped.sum(-1) == 2).all()
    aw = np.abs(np.moveaxis(w, 1, -1).reshape(-1, groups, 4) if conv else w.reshape(rows, groups, 4))
    assert (np.where(grouped, aw, np.inf).min(-1) >= np.where(grouped, -np.inf, aw).max(-1)).all()
    assert P.is_2_4(w * m)


def test_mask_2_4_needs_groups_of_four():
    with pytest.raises(ValueError):
        P.mask_2_4(np.ones((2, 6)))


def test_l1_ranking_and_channel_choice():
    w = np.zeros((4, 2, 1, 1)); w[:, 0, 0, 0] = [3.0, -1.0, 2.0, 0.5]
    assert P.l1_filter_ranking(w).tolist() == [3, 1, 2, 0]
    assert P.filters_to_keep(w, 0.5).tolist() == [0, 2]
    assert P.keep_count(30, 0.5, 8) == 16 and P.keep_count(4, 0.1, 8) == 4 and P.keep_count(64, 0.5, 8) == 32
    assert P.channels_to_keep(np.array([0.1, 5, 0.2, 3]), 0.5).tolist() == [1, 3]


@settings(max_examples=30, derandomize=True, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.floats(0, 1), st.integers(0, 2**31 - 1))
def test_csr_round_trip_bytes_and_product(r, c, density, seed):
    g = np.random.default_rng(seed)
    w = (g.normal(size=(r, c)) * (g.uniform(size=(r, c)) < density)).astype(np.float32)
    a = P.to_csr(w)
    assert np.array_equal(a.to_dense(), w)
    nnz = int((w != 0).sum())
    assert a.nbytes == 8 * nnz + 4 * (r + 1)
    x = g.normal(size=(c, 3)).astype(np.float32)
    np.testing.assert_allclose(P.csr_matmul(a, x), w @ x, rtol=1e-5, atol=1e-5)


@settings(max_examples=25, derandomize=True, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_2_4_compressed_form(rows, eights, seed):
    g = np.random.default_rng(seed)
    w = g.normal(size=(rows, 8 * eights)).astype(np.float32)
    w = w * P.mask_2_4(w)
    w[0, :4] = 0  # a group with fewer than two non-zeros
    z = P.compress_2_4(w)
    assert np.array_equal(z.to_dense(), w)
    assert z.nbytes == w.nbytes // 2 + w.size // 8  # values + one byte of positions per 8 weights
    x = g.normal(size=(8 * eights, 5)).astype(np.float32)
    np.testing.assert_allclose(P.sparse24_matmul(z, x), w @ x, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        P.compress_2_4(np.ones((1, 8), np.float32))
