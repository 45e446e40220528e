"""Models the course runs: six ImageNet-style architectures built from scratch (random weights)
and a small CNN trained on scikit-learn's 8x8 digits, shipped as ``digits_cnn.onnx``."""
from __future__ import annotations

from course.models.builders import MODEL_NAMES, MODELS, build_model
from course.models.digits import DigitsSplit, digits_model_path, load_digits_split

__all__ = ["MODELS", "MODEL_NAMES", "build_model", "DigitsSplit", "digits_model_path",
           "load_digits_split"]
