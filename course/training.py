"""The minibatch schedule the numpy training loops share (the digits CNN's training, pruning's
fine-tuning, QAT): shuffled minibatches epoch after epoch, the learning rate on a cosine decay."""
from __future__ import annotations

from typing import Iterator

import numpy as np


def cosine_epochs(opt, n: int, epochs: int, batch_size: int, lr: float,
                  rng: np.random.Generator) -> Iterator[tuple[int, list[np.ndarray]]]:
    """``(epoch, [index arrays of its minibatches])`` per epoch, after setting ``opt.lr`` to
    ``lr * (1 + cos(pi * epoch / epochs)) / 2``; each epoch is a fresh permutation from ``rng``."""
    for epoch in range(epochs):
        opt.lr = lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))
        order = rng.permutation(n)
        yield epoch, [order[s:s + batch_size] for s in range(0, n, batch_size)]
