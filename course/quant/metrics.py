"""How far a quantized model's outputs are from the float model's: SQNR and accuracy."""
from __future__ import annotations

import numpy as np


def sqnr(reference: np.ndarray, approx: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB: 10 log10(sum ref^2 / sum (ref - approx)^2)."""
    ref = np.asarray(reference, np.float64)
    noise = np.sum((ref - np.asarray(approx, np.float64)) ** 2)
    return float("inf") if noise == 0 else float(10.0 * np.log10(np.sum(ref ** 2) / noise))


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def run_model(model, feeds: dict) -> list[np.ndarray]:
    """The outputs of ``model`` (proto, path, bytes or Graph) for ``feeds``, computed node by node
    by the reference ops, the graph exactly as written (no pass, no provider, no session)."""
    from course.passes.evaluate import run_graph
    from course.quant.observe import load_graph

    return run_graph(load_graph(model), feeds)
