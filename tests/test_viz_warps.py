"""course.viz.warps: a warp request drawn from the tracer's records, with the cost the tracer counts."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from numba import cuda  # noqa: E402

from course.viz.warps import draw_warp_request, request_cost  # noqa: E402
from kernels import trace  # noqa: E402


@cuda.jit
def gather(out, a, stride):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = a[i * stride]


@cuda.jit
def column(out):
    tile = cuda.shared.array((32, 32), np.float32)
    t = cuda.threadIdx.x
    tile[0, t] = t
    cuda.syncthreads()  # row 0 is written before the column read
    out[t] = tile[t, 0]


def _request(stride):
    recs = trace.accesses(gather, 1, 32, np.zeros(32, np.float32), np.zeros(32 * stride + 1, np.float32), stride)
    return trace.warp_requests(recs, array="a")[0]


def test_global_requests_cost_and_drawing():
    for stride, sectors in ((1, 4), (2, 8), (8, 32), (0, 1)):
        req = _request(stride)
        assert request_cost(req) == {"lanes": 32, "useful_bytes": 4 * len({r.address for r in req}), "sectors": sectors}
        fig, ax = plt.subplots()
        draw_warp_request(req, ax=ax)
        assert f"{sectors} sectors" in ax.get_title()
        assert len(ax.get_lines()) == 32  # one line per lane
        plt.close(fig)


def test_shared_request_rows_are_the_conflict_degree():
    recs = trace.accesses(column, 1, 32, np.zeros(32, np.float32))
    req = trace.warp_requests(recs, array="tile", kind="load")[0]
    assert request_cost(req)["degree"] == 32
    fig, ax = plt.subplots()
    draw_warp_request(req, ax=ax)
    assert "conflict degree 32" in ax.get_title()
    words = [p for p in ax.patches if p.get_height() == 0.6 and p.get_y() <= 0]
    assert len({round(p.get_y(), 3) for p in words}) == 32
    plt.close(fig)
