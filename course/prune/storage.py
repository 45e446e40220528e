"""Sparse storage that really is smaller, its byte counts, and the products that read it.

* CSR (compressed sparse row): ``values`` (the non-zeros row by row, left to right),
  ``col_indices`` (int32: each value's column) and ``row_ptr`` (int32, rows + 1 entries: row r's
  values are ``values[row_ptr[r]:row_ptr[r + 1]]``). Bytes: nnz * (4 + 4) + (rows + 1) * 4 for
  float32 values -- every kept weight pays 4 bytes of index, so at 50% sparsity CSR is *larger*
  than dense; it pays off only well above it.
* 2:4 compressed (NVIDIA Ampere): of every four weights along the input dimension two values are
  stored plus two 2-bit positions (one byte holds both, here: 4 bits of index per kept pair, packed
  two groups to a byte): values [rows, in / 2] + metadata [rows, in / 8] bytes, i.e. 50% + 1/16
  of the dense float32 bytes -- 56.25%, and a sparse Tensor Core reads it at twice the math rate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CSR:
    values: np.ndarray       # [nnz] (the weight's dtype)
    col_indices: np.ndarray  # [nnz] int32
    row_ptr: np.ndarray      # [rows + 1] int32
    shape: tuple

    @property
    def nnz(self) -> int:
        return int(len(self.values))

    @property
    def nbytes(self) -> int:
        """Bytes of the three arrays: what the format really stores."""
        return int(self.values.nbytes + self.col_indices.nbytes + self.row_ptr.nbytes)

    def to_dense(self) -> np.ndarray:
        out = np.zeros(self.shape, self.values.dtype)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.row_ptr))
        out[rows, self.col_indices] = self.values
        return out


def csr_encode(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, col_indices int32, row_ptr int32) of a 2-D array: the non-zeros in row-major order."""
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"CSR stores a matrix, got shape {w.shape}")
    rows, cols = np.nonzero(w)  # row-major order
    counts = np.bincount(rows, minlength=w.shape[0])
    row_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return w[rows, cols].copy(), cols.astype(np.int32), row_ptr


def to_csr(w: np.ndarray) -> CSR:
    values, cols, ptr = csr_encode(w)
    return CSR(values, cols, ptr, tuple(np.shape(w)))


def csr_matmul(a: CSR, x: np.ndarray) -> np.ndarray:
    """A @ x for A in CSR and dense x [K, N]: each stored value scales one row of x (only the
    non-zeros are multiplied). Vectorized as a gather + segment sum."""
    x = np.asarray(x)
    prods = a.values[:, None].astype(np.result_type(a.values, x)) * x[a.col_indices]
    out = np.zeros((a.shape[0], x.shape[1]), prods.dtype)
    rows = np.repeat(np.arange(a.shape[0]), np.diff(a.row_ptr))
    np.add.at(out, rows, prods)
    return out


def dense_nbytes(w: np.ndarray) -> int:
    return int(np.asarray(w).nbytes)


@dataclass
class Sparse24:
    values: np.ndarray    # [rows, in / 2]: the two kept values of each group
    metadata: np.ndarray  # [rows, in / 8] uint8: two groups' 2 x 2-bit positions per byte
    shape: tuple          # (rows, in)

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes + self.metadata.nbytes)

    def positions(self) -> np.ndarray:
        """[rows, in / 4, 2] int: the column inside each group of the two kept values."""
        rows, n = self.shape
        m = self.metadata.astype(np.int64)
        nib = np.stack([m & 0xF, m >> 4], axis=-1).reshape(rows, n // 4)  # one nibble per group
        return np.stack([nib & 0x3, nib >> 2], axis=-1)

    def to_dense(self) -> np.ndarray:
        rows, n = self.shape
        out = np.zeros((rows, n // 4, 4), self.values.dtype)
        np.put_along_axis(out, self.positions(), self.values.reshape(rows, n // 4, 2), axis=-1)
        return out.reshape(rows, n)


def compress_2_4(w: np.ndarray) -> Sparse24:
    """The 2:4 compressed form of a 2-D [rows, in] matrix with at most two non-zeros in each group
    of four along ``in`` (a multiple of 8 here, so metadata bytes are whole). Where a group holds
    fewer than two non-zeros, zeros at the lowest free positions fill it."""
    w = np.asarray(w)
    rows, n = w.shape
    if n % 8:
        raise ValueError(f"the input dimension must be a multiple of 8 for packed metadata, got {n}")
    g = w.reshape(rows, n // 4, 4)
    if ((g != 0).sum(-1) > 2).any():
        raise ValueError("not 2:4 sparse: a group of four holds more than two non-zeros")
    # order: non-zeros first (by position), then zeros; take two, sorted by position
    key = (g == 0).astype(np.int64) * 4 + np.arange(4)
    pos = np.sort(np.argsort(key, axis=-1, kind="stable")[..., :2], axis=-1)
    values = np.take_along_axis(g, pos, axis=-1).reshape(rows, n // 2)
    nib = (pos[..., 0] | (pos[..., 1] << 2)).reshape(rows, n // 8, 2)
    meta = (nib[..., 0] | (nib[..., 1] << 4)).astype(np.uint8)
    return Sparse24(values.copy(), meta, (rows, n))


def sparse24_matmul(a: Sparse24, x: np.ndarray) -> np.ndarray:
    """A @ x for A in 2:4 form and x [in, N]: each kept value meets the row of x its 2-bit index
    names -- half the multiply-adds of the dense product."""
    rows, n = a.shape
    col = (np.arange(n // 4)[None, :, None] * 4 + a.positions()).reshape(rows, n // 2)
    return np.einsum("rk,rkn->rn", a.values, np.asarray(x)[col])
