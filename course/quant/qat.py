"""Quantization-aware training (QAT): fake quantization forward, straight-through estimator back.

Post-training quantization (PTQ) rounds weights the network was never trained with; at 8 bits
the error hides in the noise, at 4 bits it does not. QAT fine-tunes the float ("master") weights
while the forward pass sees them quantized (Jacob et al., "Quantization and Training of Neural
Networks for Efficient Integer-Arithmetic-Only Inference", CVPR 2018):

    forward:   w_q = (clip(round_half_even(w / s) + z, qmin, qmax) - z) * s     (fake quantization)
    backward:  dL/dw = dL/dw_q * [qmin <= round(w / s) + z <= qmax]              (straight-through)

Rounding has derivative 0 almost everywhere, which would stop all learning; the straight-through
estimator (Bengio et al. 2013) passes the gradient through the rounding unchanged and stops it only
where the value was clipped (PyTorch's fake_quantize backward uses the same mask).

The layers are those of the digits CNN's numpy training loop, ``course.models.train_digits``
(``forward(x, train)``, ``backward(dy)``, ``params`` / ``grads``); this file adds the small autograd
QAT needs around them: ``FakeQuant`` (a layer of its own) and ``QuantizedWeights`` (a layer whose
weight goes through a FakeQuant on every forward pass, and whose weight gradient comes back through
it). It does not import ``course.models`` (quant sits below it): the caller hands in the layers,
the loss and the optimizer, e.g. ``train_digits.build_network``, ``softmax_xent`` and ``Adam``.

Weights are quantized symmetrically per output channel (axis 0 of a Conv's ``W`` and of a Dense
layer's ``W``, the output rows of ONNX's Gemm with transB=1). A positive per-channel factor --
the BatchNormalization a deployed model folds into the conv before it -- scales that grid exactly,
so the conv weights trained here are the ones the folded model's per-channel int8/int4 grid holds.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from course.training import cosine_epochs


def symmetric_range(bits: int) -> tuple[int, int]:
    """The signed symmetric grid of ``bits`` bits: [-(2^(b-1) - 1), 2^(b-1) - 1] (int8: +-127)."""
    top = 2 ** (bits - 1) - 1
    return -top, top


def fake_quantize(x, scale, zero_point, qmin: int, qmax: int) -> np.ndarray:
    """dequantize(quantize(x)) on a grid of any width: the values an integer engine would hold."""
    q = np.clip(np.rint(x / scale) + zero_point, qmin, qmax)
    return (q - zero_point) * scale


def ste_mask(x, scale, zero_point, qmin: int, qmax: int) -> np.ndarray:
    """Where the straight-through estimator lets the gradient through: the unclipped values."""
    v = np.rint(x / scale) + zero_point
    return (v >= qmin) & (v <= qmax)


class FakeQuant:
    """A layer: forward is ``fake_quantize``, backward the straight-through estimator.

    ``scale`` and ``zero_point`` are scalars or arrays that broadcast against the input (one per
    channel). Float64 like the rest of the training loop.
    """

    params: dict = {}

    def __init__(self, scale, zero_point, qmin: int, qmax: int):
        self.scale = np.asarray(scale, np.float64)
        self.zero_point = np.asarray(zero_point, np.float64)
        self.qmin, self.qmax = qmin, qmax

    def forward(self, x, train=False):
        self.mask = ste_mask(x, self.scale, self.zero_point, self.qmin, self.qmax)
        return fake_quantize(x, self.scale, self.zero_point, self.qmin, self.qmax)

    def backward(self, dy):
        return dy * self.mask


def channel_scale(w: np.ndarray, bits: int, per_channel: bool = True) -> np.ndarray:
    """Symmetric scale max|w| / qmax per output channel (shaped to broadcast against ``w``), or
    one for the whole tensor."""
    amax = np.abs(w).reshape(len(w), -1).max(axis=1) if per_channel else np.abs(w).max(keepdims=True)
    scale = np.where(amax > 0, amax / symmetric_range(bits)[1], 1.0)
    return scale.reshape((-1,) + (1,) * (w.ndim - 1)) if per_channel else scale.reshape(())


def weight_fake_quant(w: np.ndarray, bits: int, fake_quant: Callable = FakeQuant, per_channel: bool = True):
    """A FakeQuant (or a class with FakeQuant's constructor) for ``w``'s symmetric grid."""
    qmin, qmax = symmetric_range(bits)
    return fake_quant(channel_scale(w, bits, per_channel), np.zeros(()), qmin, qmax)


class QuantizedWeights:
    """Wraps a layer that has a weight ``W``: its forward pass runs on the fake-quantized weight,
    and the weight gradient comes back through the fake quantizer (STE). ``params`` are the
    layer's float master weights, which the optimizer updates."""

    def __init__(self, layer, bits: int, fake_quant: Callable = FakeQuant, per_channel: bool = True):
        self.layer, self.bits, self.fake_quant, self.per_channel = layer, bits, fake_quant, per_channel
        self.params = layer.params  # the master weights: the optimizer updates these in place

    def quantized_weight(self) -> np.ndarray:
        return weight_fake_quant(self.params["W"], self.bits, FakeQuant, self.per_channel).forward(self.params["W"])

    def forward(self, x, train=False):
        self.fq = weight_fake_quant(self.params["W"], self.bits, self.fake_quant, self.per_channel)
        wq = np.asarray(self.fq.forward(self.params["W"], train), np.float64)
        self.layer.params = {**self.params, "W": wq}  # the layer computes with the quantized weight
        return self.layer.forward(x, train)

    def backward(self, dy):
        dx = self.layer.backward(dy)
        self.grads = {**self.layer.grads, "W": np.asarray(self.fq.backward(self.layer.grads["W"]), np.float64)}
        return dx


def load_onnx_weights(layers: list, model) -> list:
    """Put the weights of the digits CNN's ONNX model (``train_digits.to_onnx``'s initializer names:
    conv1.W, bn1.scale/bias/mean/var, ..., fc2.B) into ``layers`` of ``train_digits.build_network``."""
    from onnx import numpy_helper

    w = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    conv1, bn1, _, conv2, bn2, _, _, _, fc1, _, fc2 = layers
    for name, layer in (("conv1", conv1), ("conv2", conv2)):
        layer.params["W"] = w[f"{name}.W"].copy()
    for name, layer in (("bn1", bn1), ("bn2", bn2)):
        layer.params["scale"], layer.params["bias"] = w[f"{name}.scale"].copy(), w[f"{name}.bias"].copy()
        layer.mean, layer.var = w[f"{name}.mean"].copy(), w[f"{name}.var"].copy()
    for name, layer in (("fc1", fc1), ("fc2", fc2)):
        layer.params["W"], layer.params["B"] = w[f"{name}.W"].copy(), w[f"{name}.B"].copy()
    return layers


def with_quantized_weights(layers: list, bits: int, fake_quant: Callable = FakeQuant,
                           per_channel: bool = True) -> list:
    """The same layers with every layer that has a weight ``W`` wrapped in QuantizedWeights."""
    return [QuantizedWeights(l, bits, fake_quant, per_channel) if "W" in getattr(l, "params", {}) else l
            for l in layers]


def frozen(layers: list) -> list:
    """Plain layers whose weights are the fake-quantized values (for export with ``to_onnx``)."""
    import copy

    out = []
    for l in layers:
        if isinstance(l, QuantizedWeights):
            inner = copy.copy(l.layer)
            inner.params = {**l.params, "W": l.quantized_weight()}
            out.append(inner)
        else:
            out.append(l)
    return out


def forward(layers: list, x: np.ndarray, train: bool = False) -> np.ndarray:
    for layer in layers:
        x = layer.forward(x, train)
    return x


def accuracy(layers: list, x: np.ndarray, y: np.ndarray) -> float:
    """Test accuracy of the numpy forward pass (eval mode: BN running statistics)."""
    return float((forward(layers, np.asarray(x, np.float64)).argmax(axis=1) == y).mean())


def qat_step(layers: list, opt, loss: Callable, x: np.ndarray, y: np.ndarray) -> float:
    """One QAT step: forward (fake-quantized weights), ``loss(logits, y) -> (value, dlogits)``,
    backward (the STE for the weights), ``opt.step()``."""
    value, grad = loss(forward(layers, x, train=True), y)
    for layer in reversed(layers):
        grad = layer.backward(grad)
    opt.step()
    return float(value)


def qat_finetune(layers: list, x: np.ndarray, y: np.ndarray, bits: int, optimizer: Callable, loss: Callable,
                 epochs: int = 1, lr: float = 5e-4, batch_size: int = 32, seed: int = 0,
                 fake_quant: Callable = FakeQuant, per_channel: bool = True) -> list:
    """Fine-tune trained ``layers`` with ``bits``-bit weights (QAT); returns the wrapped layers.

    ``optimizer(layers)`` makes the optimizer (e.g. ``lambda ls: train_digits.Adam(ls, lr)``); its
    ``lr`` follows a cosine decay from ``lr`` over the epochs. BN stays in training mode (batch
    statistics, running averages updated), as in ``train_digits.train``.
    """
    x = np.asarray(x, np.float64)
    qlayers = with_quantized_weights(layers, bits, fake_quant, per_channel)
    opt = optimizer(qlayers)
    for _, batches in cosine_epochs(opt, len(x), epochs, batch_size, lr, np.random.default_rng(seed)):
        for idx in batches:
            qat_step(qlayers, opt, loss, x[idx], y[idx])
    return qlayers
