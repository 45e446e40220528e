"""The im2col picture (course.viz.im2col): the receptive field it colours is the one the im2col
matrix's column copies, for strides, asymmetric pads and dilations; the column shows the values
of that column of an independent im2col of an input holding 0, 1, 2, ..."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course.viz.im2col import draw_im2col, receptive_field  # noqa: E402


def im2col_loops(x, kh, kw, s, p, d):
    """im2col of one (C, H, W) image by its definition, pixel by pixel."""
    C, H, W = x.shape
    xp = np.zeros((C, H + p[0] + p[2], W + p[1] + p[3]), x.dtype)
    xp[:, p[0]:p[0] + H, p[1]:p[1] + W] = x
    oh = (H + p[0] + p[2] - d[0] * (kh - 1) - 1) // s[0] + 1
    ow = (W + p[1] + p[3] - d[1] * (kw - 1) - 1) // s[1] + 1
    cols = np.zeros((C * kh * kw, oh * ow), x.dtype)
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                for y in range(oh):
                    for q in range(ow):
                        cols[(c * kh + i) * kw + j, y * ow + q] = xp[c, y * s[0] + i * d[0], q * s[1] + j * d[1]]
    return cols, ow


CASES = [  # x_shape, kernel, strides, pads, dilations, pixel
    ((2, 5, 6), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), (1, 2)),
    ((1, 4, 4), (2, 2), (1, 1), (0, 0, 0, 0), (1, 1), (0, 0)),
    ((3, 6, 5), (2, 3), (1, 2), (2, 0, 1, 1), (2, 1), (0, 1)),  # asymmetric pads, dilation: pads read
]


def by_gid(artists, gid):
    return [a for a in artists if a.get_gid() == gid]


@pytest.mark.parametrize("case", CASES)
def test_the_receptive_field_is_the_column_im2col_builds(case):
    x_shape, (kh, kw), s, p, d, (y, x) = case
    image = np.arange(int(np.prod(x_shape))).reshape(x_shape) + 1  # +1: a padding zero is not element 0
    cols, ow = im2col_loops(image, kh, kw, s, p, d)
    taps = receptive_field(x_shape, (kh, kw), s, p, d, (y, x))
    assert [t.row for t in taps] == list(range(cols.shape[0]))
    read = [image[t.c, t.h, t.w] if t.inside else 0 for t in taps]
    assert read == cols[:, y * ow + x].tolist()


@pytest.mark.parametrize("case", CASES)
def test_draw_im2col_colours_the_taps_and_fills_the_column(case):
    x_shape, (kh, kw), s, p, d, (y, x) = case
    C = x_shape[0]
    cols, ow = im2col_loops(np.arange(int(np.prod(x_shape))).reshape(x_shape), kh, kw, s, p, d)
    fig = draw_im2col(x_shape, (kh, kw), s, p, d, (y, x))
    inp, mat = fig.axes
    taps = by_gid(inp.patches, "tap")
    assert len(taps) == C * kh * kw, "every tap of the receptive field is coloured (padding taps too)"
    column = by_gid(mat.patches, "column-cell")
    assert len(column) == C * kh * kw and {int(r.get_x()) for r in column} == {y * ow + x}
    assert [int(t.get_text()) for t in by_gid(mat.texts, "column-value")] == cols[:, y * ow + x].tolist()
    assert len([a for a in fig.artists if a.get_gid() == "arrow"]) == 1
    cells = mat.patches
    assert len(cells) == cols.size, "the whole matrix is drawn"
    plt.close(fig)


def test_a_pixel_outside_the_output_is_refused():
    with pytest.raises(ValueError, match="outside"):
        draw_im2col((1, 4, 4), (3, 3), pixel=(2, 0))
