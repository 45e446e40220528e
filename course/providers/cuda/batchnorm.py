"""BatchNormalization (inference) on the device, where no pass could fold it into a convolution
(DenseNet's pre-activation BN after a Concat): one per-channel affine, y = x * a[c] + b[c], with
a = scale / sqrt(var + eps) and b = bias - mean * a computed once on the host from the constants."""
from __future__ import annotations

import numpy as np
from numba import cuda

from course.providers.base import NodeSpec
from kernels.launch import THREADS, ceil_div


@cuda.jit
def channel_affine_kernel(y, x, a, b, inner):
    """y[i] = x[i] * a[c] + b[c] over flat NC... arrays, c = (i // inner) % C."""
    i = cuda.grid(1)
    if i < y.shape[0]:
        c = (i // inner) % a.shape[0]
        y[i] = x[i] * a[c] + b[c]


class BatchNorm:
    """The kernel of one node: folds its constants into (a, b) at the first call, keeps them."""

    def __init__(self, state, epsilon: float):
        self.state, self.epsilon, self.folded = state, epsilon, None

    def _fold(self, scale, bias, mean, var):
        a = np.asarray(scale, np.float64) / np.sqrt(np.asarray(var, np.float64) + self.epsilon)
        b = np.asarray(bias, np.float64) - np.asarray(mean, np.float64) * a
        self.folded = (a.astype(np.float32), b.astype(np.float32))  # kept: uploads are keyed by array
        return self.folded

    def __call__(self, x, scale, bias, mean, var):
        a, b = self.folded or self._fold(scale, bias, mean, var)
        shape = tuple(x.shape)
        size = int(np.prod(shape))
        y = self.state.empty((size,))
        if size:
            # Launch configuration: one thread per element, THREADS per block.
            self.state.launch(channel_affine_kernel, ceil_div(size, THREADS), THREADS, y, x.reshape((size,)),
                              self.state.constant(a), self.state.constant(b), int(np.prod(shape[2:])))
        return y.reshape(shape)


def make_batchnorm(state, spec: NodeSpec):
    return BatchNorm(state, float(spec.attrs.get("epsilon", 1e-5)))
