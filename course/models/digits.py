"""The trained digits classifier that later lessons fold, quantize and prune, and its data split.

Data: scikit-learn's ``load_digits`` (1797 8x8 grey images, values 0..16, shipped with
scikit-learn: no download). :func:`load_digits_split` scales pixels to [0, 1] and reshapes to
NCHW ``[N, 1, 8, 8]`` float32, the model's input layout, with a fixed stratified split.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

MODEL_FILE = Path(__file__).resolve().parent / "digits_cnn.onnx"
NOTE_FILE = Path(__file__).resolve().parent / "digits_cnn.json"
SPLIT_SEED = 0
TEST_FRACTION = 0.25


class DigitsSplit(NamedTuple):
    x_train: np.ndarray  # float32 [n_train, 1, 8, 8] in [0, 1]
    y_train: np.ndarray  # int64 [n_train], labels 0..9
    x_test: np.ndarray
    y_test: np.ndarray


def digits_model_path() -> Path:
    """Path of ``digits_cnn.onnx``: input "input" float32 [N, 1, 8, 8], output "logits" [N, 10]."""
    return MODEL_FILE


def load_digits_split(seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION) -> DigitsSplit:
    """The split the shipped model was trained and evaluated on (defaults): 1347 train, 450 test,
    stratified by label. Images are ``pixels / 16`` as float32 ``[N, 1, 8, 8]``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None, :, :]
    y = data.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed,
                                              stratify=y)
    return DigitsSplit(x_tr, y_tr, x_te, y_te)
