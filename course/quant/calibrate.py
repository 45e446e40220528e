"""Calibrators: turn the activations a model produces on sample inputs into one range per tensor.

A calibrator only keeps statistics: ``collect(name, array)`` per tensor and batch, then
``compute_ranges() -> {name: TensorRange}``. ``calibrate(model, reader, method)`` runs the float
model in the engine over a calibration data reader (onnxruntime's shape: ``get_next()`` returns
a feed dict, then None when the data is used up) and feeds every tensor it is asked about.

- min-max: the exact range seen. Every value is representable; one outlier stretches the grid.
- percentile: the |x| below which ``percentile`` % of the values lie (onnxruntime: 99.999).
- entropy: TensorRT's KL-divergence threshold (see ``course.quant.entropy``).
- MSE: the threshold that minimises clipping error plus rounding noise over the histogram.
"""
from __future__ import annotations

import inspect
from typing import Iterable, NamedTuple, Optional

import numpy as np

from course.quant.entropy import entropy_threshold, mse_threshold
from course.quant.histogram import AbsHistogram
from course.quant.types import CalibrationMethod


class TensorRange(NamedTuple):
    rmin: float
    rmax: float


class CalibrationDataReader:
    """onnxruntime's reader contract: ``get_next()`` returns ``{input name: array}`` or None."""

    def get_next(self) -> Optional[dict]:
        raise NotImplementedError

    def rewind(self) -> None:
        pass


class ArrayDataReader(CalibrationDataReader):
    """Feeds ``arrays`` (one input) in batches of ``batch_size``; ``rewind()`` starts again."""

    def __init__(self, input_name: str, arrays: np.ndarray, batch_size: int = 32):
        self.input_name, self.arrays, self.batch_size = input_name, np.asarray(arrays), batch_size
        self.pos = 0

    def get_next(self) -> Optional[dict]:
        if self.pos >= len(self.arrays):
            return None
        batch = self.arrays[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return {self.input_name: batch}

    def rewind(self) -> None:
        self.pos = 0


class Calibrator:
    """Base: subclasses keep per-tensor statistics and turn them into ranges."""

    def __init__(self):
        self.stats: dict[str, object] = {}

    def collect(self, name: str, array: np.ndarray) -> None:
        raise NotImplementedError

    def compute_ranges(self) -> dict[str, TensorRange]:
        return {name: TensorRange(*self.range_of(name)) for name in self.stats}

    def range_of(self, name: str) -> tuple[float, float]:
        raise NotImplementedError


class MinMaxCalibrator(Calibrator):
    """The exact min and max over every batch."""

    def collect(self, name: str, array: np.ndarray) -> None:
        lo, hi = float(np.min(array)), float(np.max(array))
        old = self.stats.get(name, (lo, hi))
        self.stats[name] = (min(old[0], lo), max(old[1], hi))

    def range_of(self, name: str) -> tuple[float, float]:
        return self.stats[name]


class HistogramCalibrator(Calibrator):
    """Keeps an ``AbsHistogram`` per tensor; subclasses choose a threshold on it."""

    def __init__(self, bins: int = 2048):
        super().__init__()
        self.bins = bins

    def collect(self, name: str, array: np.ndarray) -> None:
        self.stats.setdefault(name, AbsHistogram(self.bins)).add(array)

    def range_of(self, name: str) -> tuple[float, float]:
        h = self.stats[name]
        return h.clipped(self.threshold(h)) if h.amax > 0 else (0.0, 0.0)

    def threshold(self, h: AbsHistogram) -> float:
        raise NotImplementedError


class PercentileCalibrator(HistogramCalibrator):
    def __init__(self, percentile: float = 99.999, bins: int = 2048):
        super().__init__(bins)
        self.percentile = percentile

    def threshold(self, h: AbsHistogram) -> float:
        cdf = np.cumsum(h.counts) / h.counts.sum()
        i = int(np.searchsorted(cdf, self.percentile / 100.0))
        return float(h.edges[min(i + 1, h.bins)])  # the right edge of the bin the percentile is in


class EntropyCalibrator(HistogramCalibrator):
    """``num_quantized_bins`` levels over [0, t] (TensorRT: 128); None picks 255 for a
    non-negative tensor (uint8 spends all its levels on [0, t]) and 128 otherwise."""

    def __init__(self, num_quantized_bins: Optional[int] = None, bins: int = 2048):
        super().__init__(bins)
        self.num_quantized_bins = num_quantized_bins

    def threshold(self, h: AbsHistogram) -> float:
        levels = self.num_quantized_bins or (255 if h.min >= 0 else 128)
        return entropy_threshold(nonzero_counts(h), h.width, levels)


def nonzero_counts(h: AbsHistogram) -> np.ndarray:
    """The histogram without its exact zeros. A zero is quantized exactly at every threshold (the
    zero point is exact), so it says nothing about where to clip; left in, a ReLU's zeros are a
    spike that Q smears over a chunk. ``entropy_threshold`` guesses bin 0 from bin 1 instead
    (pytorch-quantization's rule), which is wrong when bin 1 is empty: for values on a grid
    (pixels k/16) it emptied bin 0, and a one-bin candidate then matched P exactly (KL 0),
    clipping [-1, 1] to [-1/16, 1/16]. Without the zeros, bin 0 holds only small non-zero values."""
    counts = h.counts.copy()
    counts[0] = max(counts[0] - h.zeros, 0.0)
    return counts


class MSECalibrator(HistogramCalibrator):
    def __init__(self, num_bits: int = 8, bins: int = 2048):
        super().__init__(bins)
        self.num_bits = num_bits

    def threshold(self, h: AbsHistogram) -> float:
        steps = 2 ** self.num_bits - 1
        return mse_threshold(h.counts, h.width, steps if h.min >= 0 else steps / 2)


def create_calibrator(method=CalibrationMethod.MinMax, **options) -> Calibrator:
    """The calibrator for ``method``; options it does not take are ignored (percentile,
    num_quantized_bins, num_bits, bins), so one option dict serves every method."""
    method = CalibrationMethod[method] if isinstance(method, str) else method
    table = {CalibrationMethod.MinMax: MinMaxCalibrator, CalibrationMethod.Percentile: PercentileCalibrator,
             CalibrationMethod.Entropy: EntropyCalibrator, CalibrationMethod.MSE: MSECalibrator}
    if method not in table:
        raise ValueError(f"calibration method {method} is not supported (use one of {[m.name for m in table]})")
    cls = table[method]
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in options.items() if k in accepted})


def calibrate(model, reader: CalibrationDataReader, method=CalibrationMethod.MinMax,
              tensor_names: Optional[Iterable[str]] = None, **options) -> dict[str, TensorRange]:
    """Run ``model`` (ONNX model, path or course Graph) over ``reader`` and return the range of
    each tensor in ``tensor_names`` (default: every float tensor a node writes, and the inputs)."""
    from course.quant.observe import observe

    cal = create_calibrator(method, **options)
    for batch in observe(model, reader, tensor_names):
        for name, array in batch.items():
            cal.collect(name, array)
    return cal.compute_ranges()
