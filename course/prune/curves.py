"""Accuracy against sparsity, per pruning method, right after the cut and after a short fine-tune.

Each point starts from the same trained model, prunes it with one method at one level, measures
test accuracy, fine-tunes with :func:`course.prune.train.finetune` under a small fixed budget
(:class:`Budget`: by default one epoch) and measures again. The methods:

* ``"magnitude (per layer)"``: every weight tensor loses the same fraction of its smallest |w|;
* ``"magnitude (global)"``: one threshold across all of them (layers of large weights keep more);
* ``"2:4"``: two of every four weights along the input dimension, on each layer whose input
  dimension is a multiple of 4 (a first conv with one input channel stays dense) -- one point,
  its level is fixed;
* ``"L1 filters"``: every Conv loses that fraction of its filters, smallest L1 norm first, and
  the channels are removed from the graph (:func:`course.prune.surgery.prune_channels`: the BN,
  the next layer's input channels go with them).

The x coordinate of a point is *measured*, the same way for every method: the fraction of the
model's weights (``W`` of every Conv and Gemm) that are zero or removed. For magnitude pruning it
is the level asked for; for filter pruning it is not (a filter removed also removes the next
layer's input columns), which is why the level and the sparsity are kept apart.

The layers are the numpy training loop's, made by the caller's ``to_layers(model)`` (as for
``finetune``: this package does not import ``course.models``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import onnx
from onnx import numpy_helper

from course.prune.masks import filters_to_keep, global_magnitude_masks, input_last, magnitude_mask, mask_2_4
from course.prune.surgery import prune_channels
from course.prune.train import accuracy, apply_masks, finetune, finetune_step, layer_masks, weight_layers

METHODS = ("magnitude (per layer)", "magnitude (global)", "2:4", "L1 filters")


@dataclass(frozen=True)
class Budget:
    """The fine-tuning after each cut: ``epochs`` over the first ``n_train`` training rows (all
    when None), Adam made by the caller's ``optimizer``, cosine ``lr``, seeded."""
    epochs: int = 1
    lr: float = 1e-3
    batch_size: int = 32
    n_train: Optional[int] = None
    seed: int = 0


@dataclass(frozen=True)
class CurvePoint:
    """One pruned model: the ``level`` asked for, the ``sparsity`` reached (fraction of the
    weights zero or removed), test accuracy right after the cut and after the fine-tuning."""
    level: float
    sparsity: float
    pruned: float
    finetuned: float


def weights_gone(layers: list, total: int) -> float:
    """Fraction of ``total`` weights (the unpruned model's count) that are zero or no longer there."""
    return 1.0 - sum(int(np.count_nonzero(layers[i].params["W"])) for i in weight_layers(layers)) / total


def _global_masks(layers: list, level: float) -> dict:
    idx = weight_layers(layers)
    masks = global_magnitude_masks({i: layers[i].params["W"] for i in idx}, level)
    return dict(zip(idx, masks.values()))


def _masks_2_4(layers: list, level: float) -> dict:
    skip = tuple(i for i in weight_layers(layers) if input_last(layers[i].params["W"]).shape[1] % 4)
    return layer_masks(layers, mask_2_4, skip=skip)


MASKS = {
    "magnitude (per layer)": lambda layers, s: layer_masks(layers, lambda w: magnitude_mask(w, s)),
    "magnitude (global)": _global_masks,
    "2:4": _masks_2_4,
}


def l1_filter_cut(model: onnx.ModelProto, level: float) -> onnx.ModelProto:
    """Every Conv of ``model`` without its ``level`` fraction of smallest-L1 filters, removed from
    the graph (kept counts rounded up: at least one filter stays)."""
    w = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    keep = {n.name: filters_to_keep(w[n.input[1]], 1.0 - level) for n in model.graph.node if n.op_type == "Conv"}
    return prune_channels(model, keep)


def prune_point(method: str, level: float, model: onnx.ModelProto, to_layers: Callable) -> tuple[list, dict]:
    """(layers, masks) of ``model`` pruned by ``method`` at ``level``; masks is empty for filter
    pruning (the channels are gone, nothing to hold at zero)."""
    if method == "L1 filters":
        return to_layers(l1_filter_cut(model, level)), {}
    if method not in MASKS:
        raise ValueError(f"unknown pruning method {method!r}; known: {', '.join(METHODS)}")
    layers = to_layers(model)
    masks = MASKS[method](layers, level)
    apply_masks(layers, masks)
    return layers, masks


def sparsity_curves(model: onnx.ModelProto, to_layers: Callable, data, optimizer: Callable, loss: Callable,
                    levels=(0.5, 0.7, 0.8, 0.9, 0.95), methods=METHODS, budget: Budget = Budget(),
                    step: Callable = finetune_step) -> dict[str, list[CurvePoint]]:
    """{method: [CurvePoint per level]} (2:4: one point at 0.5) for the trained ``model``.

    ``to_layers(model)`` gives fresh numpy layers holding the model's weights (any channel
    counts); ``data`` has ``x_train, y_train, x_test, y_test`` (``load_digits_split()``);
    ``optimizer`` and ``loss`` are :func:`finetune`'s, ``step`` the training step it uses.
    """
    total = sum(l.params["W"].size for l in to_layers(model) if "W" in getattr(l, "params", {}))
    n = budget.n_train or len(data.x_train)
    x, y = data.x_train[:n], data.y_train[:n]
    curves = {}
    for method in methods:
        points = []
        for level in ((0.5,) if method == "2:4" else levels):
            layers, masks = prune_point(method, level, model, to_layers)
            before = accuracy(layers, data.x_test, data.y_test)
            finetune(layers, x, y, optimizer, loss, masks=masks, epochs=budget.epochs, lr=budget.lr,
                     batch_size=budget.batch_size, seed=budget.seed, step=step)
            points.append(CurvePoint(float(level), weights_gone(layers, total), before,
                                     accuracy(layers, data.x_test, data.y_test)))
        curves[method] = points
    return curves
