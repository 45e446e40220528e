"""2D convolution as im2col + the tiled matmul.

im2col unrolls every receptive field into a column: for input x (N, C, H, W) and kernel size
(KH, KW), ``cols[(c*KH + kh)*KW + kw, (n*OH + oh)*OW + ow] = x[n, c, ih, iw]`` with
``ih = oh*stride - pad + kh*dilation`` (same for iw), and 0 where (ih, iw) falls in the padding.
The convolution is then one matmul: ``W.reshape(F, C*KH*KW) @ cols`` gives (F, N*OH*OW).
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from kernels.launch import ceil_div, device_empty, to_device
from kernels.matmul_tiled import matmul_tiled

BLOCK = (32, 8)  # x over output positions (coalesced writes of cols), y over (c, kh, kw)


def conv_out_size(size: int, k: int, stride: int, pad: int, dilation: int) -> int:
    """Output length of one spatial axis: floor((size + 2*pad - dilation*(k-1) - 1)/stride) + 1."""
    return (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1


@cuda.jit
def im2col_kernel(cols, x, KH, KW, stride, pad, dilation, OH, OW):
    """Fill cols (C*KH*KW, N*OH*OW) from x (N, C, H, W); one thread per element of cols."""
    p, r = cuda.grid(2)
    if r < cols.shape[0] and p < cols.shape[1]:
        kw = r % KW
        kh = (r // KW) % KH
        c = r // (KW * KH)
        ow = p % OW
        oh = (p // OW) % OH
        n = p // (OW * OH)
        ih = oh * stride - pad + kh * dilation
        iw = ow * stride - pad + kw * dilation
        if 0 <= ih < x.shape[2] and 0 <= iw < x.shape[3]:
            cols[r, p] = x[n, c, ih, iw]
        else:
            cols[r, p] = 0.0


def im2col(x: np.ndarray, kh: int, kw: int, stride: int = 1, pad: int = 0, dilation: int = 1) -> np.ndarray:
    """The (C*KH*KW, N*OH*OW) column matrix of x, computed on the device."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"im2col: expected x of shape (N, C, H, W), got {x.shape}")
    n, c, h, w = x.shape
    oh = conv_out_size(h, kh, stride, pad, dilation)
    ow = conv_out_size(w, kw, stride, pad, dilation)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"im2col: kernel {kh}x{kw} (dilation {dilation}, pad {pad}) does not fit input {h}x{w}")
    d_cols = device_empty((c * kh * kw, n * oh * ow), np.float32)
    # Launch configuration: BLOCK threads; x covers output positions, y covers (c, kh, kw).
    grid = (ceil_div(n * oh * ow, BLOCK[0]), ceil_div(c * kh * kw, BLOCK[1]))
    im2col_kernel[grid, BLOCK](d_cols, to_device(x), kh, kw, stride, pad, dilation, oh, ow)
    return d_cols.copy_to_host()


def conv2d_im2col(x: np.ndarray, w: np.ndarray, bias=None, stride: int = 1, pad: int = 0, dilation: int = 1) -> np.ndarray:
    """Conv2D (N, C, H, W) * (F, C, KH, KW) -> (N, F, OH, OW) via im2col and the tiled matmul."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    if w.ndim != 4 or x.ndim != 4 or w.shape[1] != x.shape[1]:
        raise ValueError(f"conv2d_im2col: weights {w.shape} do not match input {x.shape} (channels)")
    f, c, kh, kw = w.shape
    n, _, h, wd = x.shape
    cols = im2col(x, kh, kw, stride, pad, dilation)
    out = matmul_tiled(w.reshape(f, c * kh * kw), cols)  # (F, N*OH*OW)
    oh = conv_out_size(h, kh, stride, pad, dilation)
    ow = conv_out_size(wd, kw, stride, pad, dilation)
    out = out.reshape(f, n, oh, ow).transpose(1, 0, 2, 3)
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float32).reshape(1, f, 1, 1)
    return np.ascontiguousarray(out, dtype=np.float32)


def reference_conv2d(x, w, bias=None, stride: int = 1, pad: int = 0, dilation: int = 1) -> np.ndarray:
    """Direct convolution in float64 numpy (sum over c, kh, kw of shifted, strided slices)."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    w = np.asarray(w, np.float64)
    f, c, kh, kw = w.shape
    oh = (x.shape[2] - dilation * (kh - 1) - 1) // stride + 1
    ow = (x.shape[3] - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((x.shape[0], f, oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i * dilation:i * dilation + stride * (oh - 1) + 1:stride,
                      j * dilation:j * dilation + stride * (ow - 1) + 1:stride]
            out += np.einsum("nchw,fc->nfhw", patch, w[:, :, i, j])
    if bias is not None:
        out += np.asarray(bias, np.float64).reshape(1, f, 1, 1)
    return out.astype(np.float32)
