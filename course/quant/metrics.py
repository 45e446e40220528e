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


def run_model(model, feeds: dict, providers=None) -> list[np.ndarray]:
    """Run ``model`` (proto, path or bytes) once in the course engine (reference ops by default)."""
    from course.runtime.session import InferenceSession

    return InferenceSession(model, providers=providers or ["ReferenceExecutionProvider"]).run(None, feeds)
