"""course.viz.banks: the bank of each lane and the conflict degree, as the tracer counts them, and
the explorer widget's sliders."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from course.viz.banks import bank_explorer, bank_map, draw_bank_map  # noqa: E402
from kernels.trace.analysis import bank_cost  # noqa: E402


@pytest.mark.parametrize("stride,padding,word,degree", [(1, 0, 4, 1), (2, 0, 4, 2), (32, 0, 4, 32), (32, 1, 4, 1),
                                                         (33, 0, 4, 1), (0, 0, 4, 1), (32, 0, 8, 16), (32, 1, 8, 1),
                                                         (1, 0, 8, 1), (16, 0, 4, 16), (64, 1, 4, 2)])
def test_degrees(stride, padding, word, degree):
    assert bank_map(stride, padding, word)["degree"] == degree


@pytest.mark.parametrize("stride", range(0, 65, 3))
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("word", [4, 8])
def test_agrees_with_the_tracer(stride, padding, word):
    info = bank_map(stride, padding, word)
    extra, degree = bank_cost([(lane, a, word) for lane, a in enumerate(info["addresses"])])
    assert info["degree"] == degree and info["wavefronts"] - (word // 4) == extra


def test_banks_of_each_lane():
    info = bank_map(33, 0, 4)
    assert [b[0] for b in info["banks"]] == [(33 * t) % 32 for t in range(32)]
    assert bank_map(1, 0, 8)["banks"][3] == (6, 7)
    fig, ax = plt.subplots()
    draw_bank_map(32, 0, 4, ax=ax)
    assert "degree 32" in ax.get_title()
    plt.close(fig)


def test_the_explorer_reacts_to_each_control():
    box = bank_explorer()
    (stride, padding), word, text = box.children[0].children, box.children[1], box.children[2]
    assert "conflict degree 32" in text.value
    padding.value = 1
    assert "conflict degree 1<" in text.value
    word.value = 8
    assert "conflict degree 1<" in text.value
    padding.value = 0
    assert "conflict degree 16" in text.value
    stride.value = 1
    assert "conflict degree 1<" in text.value and "element 1t" in text.value
