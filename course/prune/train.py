"""Fine-tuning after pruning, knowledge distillation, and network slimming's L1 penalty.

The layers are those of the digits CNN's numpy training loop (``course.models.train_digits``:
``forward(x, train)``, ``backward(dy)``, ``params`` / ``grads``), handed in by the caller as
``course.quant.qat`` does -- this package does not import ``course.models``.

* Fine-tuning with a mask: after every optimizer step the pruned weights are set back to zero
  (Han et al. 2015 retrain the surviving connections only). Masking the gradient alone is not
  enough with Adam (momentum and weight decay move masked weights), so the mask is re-applied to
  the weights themselves.
* Distillation (Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network", 2015):
  the student matches the teacher's soft targets at temperature T,

      L = alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(softmax(s), y),

  averaged over the batch. The soft term's gradient scales as 1/T (dL/ds = (p_s^T - p_t^T) / T
  before the factor), hence T^2 keeps its weight independent of T.
* Network slimming (Liu et al. 2017): an L1 penalty lambda * sum |gamma| on the BN scales during
  training pushes unimportant channels' gammas to zero; its subgradient lambda * sign(gamma) is
  added to the BN scale gradients before the step.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from course.training import cosine_epochs


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def distillation_loss(student: np.ndarray, teacher: np.ndarray, labels: np.ndarray, T: float = 4.0,
                      alpha: float = 0.9) -> tuple[float, np.ndarray]:
    """(loss, dloss/dstudent) of Hinton's distillation loss (module docstring), batch mean."""
    n = len(student)
    p_t, log_p_t = softmax(np.asarray(teacher) / T), log_softmax(np.asarray(teacher) / T)
    log_p_s = log_softmax(np.asarray(student) / T)
    kl = float((p_t * (log_p_t - log_p_s)).sum() / n)
    log_q = log_softmax(student)
    ce = float(-log_q[np.arange(n), labels].sum() / n)
    onehot = np.zeros_like(log_q)
    onehot[np.arange(n), labels] = 1.0
    grad = alpha * T * (np.exp(log_p_s) - p_t) / n + (1 - alpha) * (np.exp(log_q) - onehot) / n
    return alpha * T * T * kl + (1 - alpha) * ce, grad


def apply_masks(layers: list, masks: dict) -> None:
    """Zero the pruned weights in place: ``masks`` maps a layer's index to its ``W``'s mask."""
    for i, mask in masks.items():
        layers[i].params["W"] *= mask


def l1_gamma_penalty(layers: list, lam: float) -> None:
    """Network slimming: add lam * sign(gamma) to every BN scale gradient (call after backward)."""
    for layer in layers:
        if "scale" in getattr(layer, "params", {}) and hasattr(layer, "grads"):
            layer.grads["scale"] = layer.grads["scale"] + lam * np.sign(layer.params["scale"])


def forward(layers: list, x: np.ndarray, train: bool = False) -> np.ndarray:
    for layer in layers:
        x = layer.forward(x, train)
    return x


def finetune_step(layers: list, masks: dict, opt, loss: Callable, x: np.ndarray, y: np.ndarray,
                  slimming: float = 0.0) -> float:
    """One step: forward (train mode), ``loss(logits, y) -> (value, dlogits)``, backward,
    (optional L1 on BN gammas), ``opt.step()``, then the masks again. Returns the loss value."""
    value, grad = loss(forward(layers, np.asarray(x, np.float64), train=True), y)
    for layer in reversed(layers):
        grad = layer.backward(grad)
    if slimming:
        l1_gamma_penalty(layers, slimming)
    opt.step()
    apply_masks(layers, masks)
    return float(value)


def finetune(layers: list, x: np.ndarray, y: np.ndarray, optimizer: Callable, loss: Callable,
             masks: Optional[dict] = None, epochs: int = 2, lr: float = 5e-4, batch_size: int = 32,
             seed: int = 0, teacher: Optional[np.ndarray] = None, T: float = 4.0, alpha: float = 0.9,
             slimming: float = 0.0, step: Callable = finetune_step,
             distill: Callable = distillation_loss) -> list:
    """Fine-tune ``layers`` in place (cosine-decayed ``lr``); returns them.

    ``optimizer(layers)`` makes the optimizer (``lambda ls: train_digits.Adam(ls, lr)``), ``loss``
    is the hard-label loss (``train_digits.softmax_xent``). With ``teacher`` (logits for every row
    of ``x``) the loss is ``distill(student, teacher_batch, y, T, alpha)`` instead.
    """
    masks = masks or {}
    x = np.asarray(x, np.float64)
    apply_masks(layers, masks)
    opt = optimizer(layers)
    for _, batches in cosine_epochs(opt, len(x), epochs, batch_size, lr, np.random.default_rng(seed)):
        for idx in batches:
            if teacher is None:
                fn = loss
            else:
                t = teacher[idx]
                fn = lambda logits, labels, t=t: distill(logits, t, labels, T, alpha)
            if slimming:
                step(layers, masks, opt, fn, x[idx], y[idx], slimming)
            else:  # a learner's step takes six arguments
                step(layers, masks, opt, fn, x[idx], y[idx])
    return layers


def accuracy(layers: list, x: np.ndarray, y: np.ndarray) -> float:
    return float((forward(layers, np.asarray(x, np.float64)).argmax(axis=1) == y).mean())


def weight_layers(layers: list) -> list[int]:
    """Indices of the layers that have a weight ``W`` (Conv and Dense)."""
    return [i for i, l in enumerate(layers) if "W" in getattr(l, "params", {})]


def layer_masks(layers: list, make: Callable, skip: tuple = ()) -> dict:
    """{index: make(W)} for every weight layer not in ``skip`` (e.g. mask_2_4, or
    lambda w: magnitude_mask(w, 0.8))."""
    return {i: make(layers[i].params["W"]) for i in weight_layers(layers) if i not in skip}
