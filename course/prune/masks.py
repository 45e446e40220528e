"""Pruning masks: which weights (or whole filters) to drop.

* Unstructured magnitude pruning (Han et al., "Learning both Weights and Connections for Efficient
  Neural Networks", NeurIPS 2015): zero the weights of smallest |w|, per layer or with one
  threshold across layers (global).
* 2:4 semi-structured sparsity (NVIDIA, "Accelerating Sparse Deep Neural Networks", Mishra et al.
  2021; Ampere's sparse Tensor Cores): in every group of four consecutive weights along the
  **input** dimension (the reduction axis of the product) two are kept.
* Filter ranking by L1 norm (Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017) and
  channel choice by |BN gamma| (Liu et al., "Learning Efficient Convolutional Networks through
  Network Slimming", ICCV 2017), with channel counts kept at a multiple (of 8 on real hardware).

A mask is a bool array shaped like the weight: True = kept.
"""
from __future__ import annotations

import numpy as np


def n_pruned(size: int, sparsity: float) -> int:
    """How many of ``size`` weights a ``sparsity`` in [0, 1] removes: round half to even."""
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    return int(np.rint(sparsity * size))


def magnitude_mask(w: np.ndarray, sparsity: float) -> np.ndarray:
    """Keep all but the ``round(sparsity * w.size)`` weights of smallest |w| in the whole tensor;
    ties go to the lower flat index (it is pruned first: a stable sort of |w|)."""
    w = np.asarray(w)
    k = n_pruned(w.size, sparsity)
    order = np.argsort(np.abs(w).ravel(), kind="stable")
    mask = np.ones(w.size, bool)
    mask[order[:k]] = False
    return mask.reshape(w.shape)


def global_magnitude_masks(weights: dict, sparsity: float) -> dict:
    """One ranking over every weight of every tensor in ``weights`` (name -> array): the
    ``round(sparsity * total)`` smallest |w| are pruned, wherever they are (layers of large
    weights keep more). Ties: the earlier tensor (dict order), then the lower index, goes first."""
    names = list(weights)
    flat = np.concatenate([np.abs(np.asarray(weights[n])).ravel() for n in names])
    keep = magnitude_mask(flat, sparsity)
    out, start = {}, 0
    for n in names:
        size = np.asarray(weights[n]).size
        out[n] = keep[start:start + size].reshape(np.shape(weights[n]))
        start += size
    return out


def input_last(w: np.ndarray) -> np.ndarray:
    """A weight as [rows, input]: a Gemm weight [out, in] as it is; a Conv weight [O, I, kh, kw]
    as [O * kh * kw, I] (the input channels last, as NVIDIA's 2:4 layout groups them)."""
    w = np.asarray(w)
    if w.ndim == 2:
        return w
    return np.moveaxis(w, 1, -1).reshape(-1, w.shape[1])


def from_input_last(m: np.ndarray, shape: tuple) -> np.ndarray:
    """Inverse of :func:`input_last` for an array shaped like the original weight ``shape``."""
    if len(shape) == 2:
        return m.reshape(shape)
    o, i, *k = shape
    return np.moveaxis(m.reshape(o, *k, i), -1, 1)


def mask_2_4(w: np.ndarray) -> np.ndarray:
    """2:4 mask: of each group of four consecutive weights along the input dimension keep the two
    of largest |w| (ties: the lower index is kept). Gemm weights [out, in] group along ``in``;
    Conv weights [O, I, kh, kw] along I. The input dimension must be a multiple of 4."""
    w = np.asarray(w)
    m = input_last(w)
    if m.shape[1] % 4:
        raise ValueError(f"2:4 needs the input dimension to be a multiple of 4, got {m.shape[1]}")
    groups = np.abs(m).reshape(m.shape[0], -1, 4)
    top = np.argsort(-groups, axis=-1, kind="stable")[..., :2]
    keep = np.zeros(groups.shape, bool)
    np.put_along_axis(keep, top, True, axis=-1)
    return from_input_last(keep.reshape(m.shape), w.shape)


def is_2_4(w: np.ndarray) -> bool:
    """True when every group of four along the input dimension has at most two non-zeros."""
    m = input_last(np.asarray(w))
    return bool(m.shape[1] % 4 == 0 and ((m.reshape(m.shape[0], -1, 4) != 0).sum(-1) <= 2).all())


def l1_filter_ranking(w: np.ndarray) -> np.ndarray:
    """Output filters (axis 0) from smallest to largest L1 norm sum |W[o]| (stable: ties keep
    index order). The first ones are those to prune."""
    w = np.asarray(w, np.float64)
    return np.argsort(np.abs(w).reshape(len(w), -1).sum(axis=1), kind="stable").astype(np.int64)


def keep_count(n: int, fraction: float, multiple: int = 1) -> int:
    """Channels to keep of ``n`` when keeping ``fraction``: rounded up to ``multiple`` (tensor
    cores and vector units like channel counts that are multiples of 8), at least ``multiple``,
    at most n."""
    k = int(np.ceil(fraction * n / multiple)) * multiple
    return int(min(n, max(multiple, k)))


def channels_to_keep(scores: np.ndarray, fraction: float, multiple: int = 1) -> np.ndarray:
    """Sorted indices of the channels with the largest ``scores`` (L1 norms, |BN gamma|), as many
    as :func:`keep_count` says."""
    scores = np.asarray(scores, np.float64)
    k = keep_count(len(scores), fraction, multiple)
    return np.sort(np.argsort(-scores, kind="stable")[:k]).astype(np.int64)


def filters_to_keep(w: np.ndarray, fraction: float, multiple: int = 1) -> np.ndarray:
    """Channels kept by L1 filter ranking: all but the lowest-ranked, sorted."""
    rank = l1_filter_ranking(w)
    k = keep_count(len(rank), fraction, multiple)
    return np.sort(rank[len(rank) - k:]).astype(np.int64)


def sparsity(w: np.ndarray) -> float:
    """Fraction of exact zeros."""
    w = np.asarray(w)
    return float((w == 0).sum() / max(w.size, 1))
