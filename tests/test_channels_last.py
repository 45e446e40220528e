"""MarkChannelsLast: which convolutions make their output channels last (``node.meta["layout"]``),
chosen for whole regions between MobileNet's 1x1 and 3x3 depthwise convolutions, on nodes the
session says run on a provider with channels-last kernels (``eligible``). Each test asserts the
precondition, ``modified``, the marks, and that the graph still verifies."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from course.ir.infer import infer_types
from course.ir.onnx_import import from_onnx
from course.passes.mark_channels_last import MarkChannelsLast
from course.passes.pipeline import optimize


def _rng(seed=0):
    return np.random.default_rng(seed)


def _chain(channels=128, graph_output_dw=False, middle=None, first="Clip"):
    """x (1, 32, 14, 14) -> 1x1 (channels) -> Clip -> 3x3 depthwise -> Clip -> [middle] -> 1x1 (32) -> y;
    ``first`` "Abs": an Abs (not fused) between the expansion and the depthwise conv."""
    r = _rng(11)
    inits = [numpy_helper.from_array((r.standard_normal((channels, 32, 1, 1)) * 0.2).astype(np.float32), "w1"),
             numpy_helper.from_array((r.standard_normal((channels, 1, 3, 3)) * 0.3).astype(np.float32), "w2"),
             numpy_helper.from_array((r.standard_normal((32, channels, 1, 1)) * 0.1).astype(np.float32), "w3"),
             numpy_helper.from_array(np.float32(0.0), "lo"), numpy_helper.from_array(np.float32(6.0), "hi")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="expand"),
             helper.make_node("Clip", ["a", "lo", "hi"], ["a6"]) if first == "Clip" else
             helper.make_node(first, ["a"], ["a6"]),
             helper.make_node("Conv", ["a6", "w2"], ["d"], group=channels, pads=[1, 1, 1, 1], name="depthwise"),
             helper.make_node("Clip", ["d", "lo", "hi"], ["d6"])]
    last = "d6"
    if middle is not None:
        nodes.append(helper.make_node(middle, ["d6"], ["m"]))
        last = "m"
    nodes.append(helper.make_node("Conv", [last, "w3"], ["y"], name="project"))
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 14, 14])]
    if graph_output_dw:
        outputs.append(helper.make_tensor_value_info("d6", TensorProto.FLOAT, [1, channels, 14, 14]))
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 14, 14])],
                          outputs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=10)


def _graph(model, level="extended"):
    g = from_onnx(model)
    infer_types(g)
    optimize(g, level)
    infer_types(g)
    return g


def _marked(g) -> list[str]:
    return [f"{n.op_type}:{n.attrs.get('group', 1)}" for n in g.nodes if n.meta.get("layout") == "NHWC"]


def test_marks_the_expansion_and_the_depthwise_conv():
    g = _graph(_chain())
    assert _marked(g) == [] and [n.op_type for n in g.nodes] == ["FusedConv", "FusedConv", "Conv"]
    result = MarkChannelsLast(lambda n: True)(g)
    assert result.modified and result.graph is g
    assert _marked(g) == ["FusedConv:1", "FusedConv:128"]  # not the last conv: its output is the graph's
    g.verify()
    assert not MarkChannelsLast(lambda n: True)(g).modified  # a fixpoint


@pytest.mark.parametrize("change", ["few channels", "dw is a graph output", "something else reads it",
                                    "dw reads no convolution", "not eligible", "no fusion"])
def test_keeps_nchw_where_channels_last_does_not_pay_or_is_not_safe(change):
    eligible, level = (lambda n: True), "extended"
    if change == "few channels":
        model = _chain(channels=32)  # below CHANNELS_LAST_MIN: neither the conv nor the depthwise
    elif change == "dw is a graph output":
        model = _chain(graph_output_dw=True)  # then its input must stay NCHW too
    elif change == "something else reads it":
        model = _chain(middle="Relu")  # a Relu reads the depthwise output, which follows its input
    elif change == "dw reads no convolution":
        model = _chain(first="Abs")  # not fused into the expansion: the depthwise input is NCHW
    elif change == "not eligible":
        model, eligible = _chain(), (lambda n: n.op_type != "FusedConv" or n.attrs.get("group", 1) == 1)
    else:
        model, level = _chain(), "disable"  # Clip reads each conv
    g = _graph(model, level)
    result = MarkChannelsLast(eligible)(g)
    assert not result.modified and _marked(g) == []
    g.verify()


def test_stale_marks_are_removed():
    g = _graph(_chain())
    MarkChannelsLast(lambda n: True)(g)
    assert len(_marked(g)) == 2
    result = MarkChannelsLast(lambda n: False)(g)  # now on a provider without channels-last kernels
    assert result.modified and _marked(g) == []
    g.verify()


def test_a_global_pool_reads_either_layout():
    from course.models.builders import build_model

    g = _graph(build_model("mobilenetv2", image_size=64))
    MarkChannelsLast(lambda n: True)(g)
    marked = _marked(g)
    assert len([m for m in marked if not m.endswith(":1")]) == 16  # every depthwise conv but the first (32 channels)
    assert len(marked) > 40
    pool = next(n for n in g.nodes if n.op_type == "GlobalAveragePool")
    assert pool.inputs[0].producer().meta.get("layout") == "NHWC"
    g2 = _graph(build_model("mobilenetv2", image_size=64))
    MarkChannelsLast(lambda n: True, any_layout=lambda n: False)(g2)
    assert g2.nodes and pool.inputs[0].producer().name not in {n.name for n in g2.nodes
                                                                if n.meta.get("layout") == "NHWC"}


def test_the_pass_imports_no_provider_and_no_numba():
    import subprocess
    import sys

    code = ("import sys; import course.passes.mark_channels_last\n"
            "print(sorted(m for m in sys.modules if m == 'numba' or m.startswith('course.providers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr[-2000:]
