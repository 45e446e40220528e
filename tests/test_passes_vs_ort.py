"""Every course model, optimised at level "all", keeps no more nodes than onnxruntime leaves at
ORT_ENABLE_EXTENDED and still computes onnxruntime's logits (reference ops, relative error
<= 1e-4). Run as a script it prints the full-size table recorded in docs/benchmarks.md:

    .venv/bin/python tests/test_passes_vs_ort.py [--ops]
"""
from __future__ import annotations

import sys

import pytest

from course.models import MODEL_NAMES, build_model
from course.passes.report import ORT_TOL, compare, print_report

SMALL = dict(image_size=32, num_classes=10, width=0.25)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_all_level_leaves_no_more_nodes_than_onnxruntime(name):
    row = compare(build_model(name, **SMALL), name)
    assert row.ours["basic"] < row.nodes  # Dropout or BatchNormalization go in every model
    assert row.ours["all"] <= row.ours["extended"] <= row.ours["basic"]
    assert row.ours["all"] <= row.ort_extended, (row.our_ops, row.ort_ops)
    assert row.error <= ORT_TOL
    for op in ("Dropout", "Identity"):
        assert op not in row.our_ops


if __name__ == "__main__":
    sys.exit(print_report([compare(build_model(n), n) for n in MODEL_NAMES], ops="--ops" in sys.argv))
