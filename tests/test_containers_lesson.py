"""Lesson 01's own rules beyond the shared ones in tests/test_lesson_format.py."""
from pathlib import Path

import nbformat

NB = Path(__file__).resolve().parent.parent / "solutions" / "01_containers" / "01_containers.ipynb"


def test_plug_it_in_uses_the_learners_heap():
    sources = "\n".join(c.source for c in nbformat.read(str(NB), as_version=4).cells)
    assert "MyPriorityQueue(Greater())" in sources, "the plug-it-in cell must use the learner's heap"
