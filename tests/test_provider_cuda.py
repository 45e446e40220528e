"""The CUDA execution provider (issue 18): the course's kernels run a model's nodes with tensors
kept on the device, copies only at the borders with host providers, a stream per running thread.

Everything runs on Numba's CUDA simulator without a GPU (small models: the simulator runs one
Python thread per CUDA thread) and on the GPU when one is present; GPU timings are skipped on the
simulator. The copy-insertion pass is also checked on its own with a device provider that runs
nothing (no numba involved).
"""
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T, helper as h

from course import InferenceSession
from course._env import simulator_on
from course.ir.onnx_import import from_onnx
from course.models import digits_model_path
from course.providers import ExecutionProvider, KernelProvider, NodeSpec, ReferenceExecutionProvider, cuda_available
from course.runtime.copies import copy_count, insert_copies
from course.runtime.partition import partition
from course.testing import assert_close, random_tensor
from ir_builders import model, ort_run

ROOT = Path(__file__).resolve().parent.parent
CUDA, CPU, REF = "CUDAExecutionProvider", "CPUExecutionProvider", "ReferenceExecutionProvider"
COPIES = ("MemcpyFromHost", "MemcpyToHost")
F32 = dict(rtol=1e-4, atol=1e-5)

needs_cuda = pytest.mark.skipif(not cuda_available(), reason="numba.cuda is unavailable: no GPU and the "
                                "CUDA simulator is off (NUMBA_ENABLE_CUDASIM=0)")


def small_cnn(batch="N"):
    """x[N,2,6,6] -> Conv(pad 1)+Relu -> MaxPool 2x2 -> Flatten -> Gemm(transB) -> Softmax -> y[N,10]."""
    inits = {"w": random_tensor((4, 2, 3, 3), seed=1), "b": random_tensor((4,), seed=2),
             "fw": random_tensor((10, 36), seed=3), "fb": random_tensor((10,), seed=4)}
    nodes = [h.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["c"], ["r"], name="relu"),
             h.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             h.make_node("Flatten", ["p"], ["f"], name="flat"),
             h.make_node("Gemm", ["f", "fw", "fb"], ["g"], name="fc", transB=1),
             h.make_node("Softmax", ["g"], ["y"], name="softmax")]
    return model(nodes, [("x", T.FLOAT, [batch, 2, 6, 6])], [("y", T.FLOAT, [batch, 10])], inits)


def cuda_session(m, *providers, **kw):
    return InferenceSession(m, providers=[*(providers or (CUDA,)), CPU], **kw)


def on_cuda(s):
    return {name for name, p in s.assignment().items() if p == CUDA}


def is_device_array(a) -> bool:
    return bool(getattr(a, "__cuda_ndarray__", False) or hasattr(a, "__cuda_array_interface__"))


# --- the copy-insertion pass on its own -------------------------------------------------------------
class FakeDevice(ExecutionProvider):
    """A device provider that claims Relu and Softmax (partitioning only: it runs nothing)."""

    name, device = "FakeDeviceExecutionProvider", "cuda"

    def claims(self, spec: NodeSpec) -> bool:
        return spec.op_type in ("Relu", "Softmax")


def test_copies_are_inserted_at_each_border_once_per_value_and_place():
    # x -> Relu (device) -> Neg (host) -> Softmax (device) -> y ; Relu's output is also a graph output
    nodes = [h.make_node("Relu", ["x"], ["r"], name="relu"), h.make_node("Neg", ["r"], ["n"], name="neg"),
             h.make_node("Add", ["r", "n"], ["a"], name="add"), h.make_node("Softmax", ["a"], ["y"], name="sm")]
    g = from_onnx(model(nodes, [("x", T.FLOAT, [2, 3])], [("y", T.FLOAT, [2, 3]), ("r", T.FLOAT, [2, 3])]))
    g.infer_types()
    owner = partition(g, [FakeDevice(), ReferenceExecutionProvider()])
    assert insert_copies(g, owner) == 4
    g.verify()
    ops = [(n.op_type, n.inputs[0].name, owner[id(n)].name) for n in g.nodes]
    dev, ref = FakeDevice.name, REF
    assert ops == [("MemcpyFromHost", "x", dev), ("Relu", "x@cuda", dev),
                   ("MemcpyToHost", "r@cuda", dev),  # shared by neg, add and the graph output
                   ("Neg", "r", ref), ("Add", "r", ref),
                   ("MemcpyFromHost", "a", dev), ("Softmax", "a@cuda", dev), ("MemcpyToHost", "y@cuda", dev)]
    assert [v.name for v in g.outputs] == ["y", "r"]  # the host copies carry the outputs' names
    assert all(v.producer().op_type == "MemcpyToHost" for v in g.outputs)


def test_no_copies_without_a_device_provider():
    g = from_onnx(small_cnn())
    g.infer_types()
    n = len(g.nodes)
    assert insert_copies(g, partition(g, [ReferenceExecutionProvider()])) == 0 and len(g.nodes) == n


# --- the provider, end to end ------------------------------------------------------------------------
@needs_cuda
def test_small_cnn_runs_on_cuda_and_matches_onnxruntime():
    m = small_cnn()
    s = cuda_session(m)
    assert on_cuda(s) == set(s.assignment())  # every node, the two copies included
    assert [st.spec.op_type for st in s.plan.steps] == [
        "MemcpyFromHost", "FusedConv", "MaxPool", "Flatten", "Gemm", "Softmax", "MemcpyToHost"]
    assert (copy_count(s), copy_count(s, "to_device"), copy_count(s, "to_host")) == (2, 1, 1)
    assert s.describe_partition().splitlines()[-1] == "host<->device copies per run: 2 (1 to the device, 1 to the host)"
    x = random_tensor((2, 2, 6, 6), seed=9)  # batch 2: the im2col product is scattered to NCHW
    y = s.run(None, {"x": x})[0]
    assert type(y) is np.ndarray and y.dtype == np.float32
    assert_close(y, ort_run(m, {"x": x})[0], **F32)


@needs_cuda
def test_digits_cnn_runs_on_cuda():
    m = onnx.load(digits_model_path())
    s = cuda_session(m)
    assert on_cuda(s) == set(s.assignment()) and copy_count(s) == 2
    x = random_tensor((1, 1, 8, 8), seed=3, low=0, high=1)
    assert_close(s.run(None, {"input": x})[0], ort_run(m, {"input": x})[0], **F32)


@needs_cuda
def test_an_op_cuda_does_not_claim_falls_back_with_exactly_the_copies_it_needs():
    # conv (cuda) -> LRN (not claimed: cpu side) -> Add(lrn, conv) -> Relu (both cuda) -> y
    inits = {"w": random_tensor((3, 2, 3, 3), seed=1)}
    nodes = [h.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             h.make_node("LRN", ["c"], ["l"], name="lrn", size=3),
             h.make_node("Add", ["l", "c"], ["a"], name="add"), h.make_node("Relu", ["a"], ["y"], name="relu")]
    m = model(nodes, [("x", T.FLOAT, [1, 2, 5, 5])], [("y", T.FLOAT, [1, 3, 5, 5])], inits)
    s = cuda_session(m)
    assert s.assignment()["lrn"] != CUDA
    assert {st.spec.op_type for st in s.plan.steps if st.provider != CUDA} == {"LRN"}
    # x to the device; conv's output to the host for LRN; LRN's output to the device; y to the host
    assert (copy_count(s, "to_device"), copy_count(s, "to_host")) == (2, 2)
    x = random_tensor((1, 2, 5, 5), seed=4)
    assert_close(s.run(None, {"x": x})[0], ort_run(m, {"x": x})[0], **F32)


def recording_cuda():
    """A CUDA provider that records what each of its kernels is given and returns."""
    from course.providers.cuda import CUDAExecutionProvider

    class RecordingCUDA(CUDAExecutionProvider):
        def __init__(self):
            super().__init__()
            self.calls = {}

        def kernel(self, spec):
            fn = super().kernel(spec)

            def recorded(*args):
                out = fn(*args)
                self.calls[spec.name] = (args, out)
                return out
            return recorded

    return RecordingCUDA()


@needs_cuda
def test_tensors_between_cuda_nodes_stay_on_the_device():
    p = recording_cuda()
    s = cuda_session(small_cnn(batch=1), p)
    s.run(None, {"x": random_tensor((1, 2, 6, 6), seed=1)})
    steps = s.plan.steps
    # the only copies: after the graph input and before the graph output, none between CUDA nodes
    assert [st.spec.op_type for st in steps if st.spec.op_type in COPIES] == list(COPIES)
    assert (steps[0].spec.op_type, steps[-1].spec.op_type) == COPIES
    for st in steps:
        args, out = p.calls[st.spec.name]
        if st.spec.op_type == "MemcpyToHost":
            assert type(out) is np.ndarray
            continue
        assert is_device_array(out), f"{st.spec.name} returned {type(out).__name__}"
        if st.spec.op_type != "MemcpyFromHost":  # every input made at run time is a device array
            made = [a for i, a in zip(st.ins, args) if i not in s.plan.constants]
            assert made and all(is_device_array(a) for a in made), st.spec.name


@needs_cuda
def test_two_threads_run_at_once_on_their_own_streams():
    """A host kernel between two CUDA parts waits on a barrier: both runs are in flight together."""
    from course.providers.cuda import CUDAExecutionProvider

    cuda_p = CUDAExecutionProvider()
    barrier, streams, launches = threading.Barrier(2, timeout=120), {}, []
    launch = cuda_p.state.launch

    def recorded_launch(*args):
        launches.append((threading.get_ident(), id(cuda_p.current_stream())))
        return launch(*args)
    cuda_p.state.launch = recorded_launch

    def rendezvous(x):
        streams[threading.get_ident()] = id(cuda_p.current_stream())
        barrier.wait()
        return np.maximum(x, 0)
    m = small_cnn(batch=1)
    s = InferenceSession(m, providers=[KernelProvider({"Relu": rendezvous}), cuda_p, CPU])
    feeds = [random_tensor((1, 2, 6, 6), seed=k) for k in range(2)]
    results, errors = [None, None], []

    def worker(k):
        try:
            results[k] = s.run(None, {"x": feeds[k]})[0]
        except Exception as e:  # reported below: an assert in a thread would be lost
            errors.append(e)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(set(streams.values())) == 2, "each running thread has a stream of its own"
    assert {(t, st) for t, st in launches} == set(streams.items())  # every launch on its run's stream
    for k in range(2):
        assert_close(results[k], ort_run(m, {"x": feeds[k]})[0], **F32)


# --- kernels of each family against onnxruntime -----------------------------------------------------------
def _case_gemm():
    inits = {"b": random_tensor((5, 7), seed=2), "c": random_tensor((5,), seed=3)}
    nodes = [h.make_node("Gemm", ["a", "b", "c"], ["y"], name="g", transB=1, alpha=0.5, beta=2.0)]
    return model(nodes, [("a", T.FLOAT, [3, 7])], [("y", T.FLOAT, [3, 5])], inits), {"a": (3, 7)}


def _case_matmul_two_inputs():
    nodes = [h.make_node("MatMul", ["a", "b"], ["y"], name="mm")]
    return model(nodes, [("a", T.FLOAT, [5, 9]), ("b", T.FLOAT, [9, 17])], [("y", T.FLOAT, [5, 17])]), \
        {"a": (5, 9), "b": (9, 17)}


def _case_conv_stride_residual_leaky():
    inits = {"w": random_tensor((3, 2, 3, 3), seed=5), "bias": random_tensor((3,), seed=6)}
    nodes = [h.make_node("Conv", ["x", "w", "bias"], ["c"], name="conv", strides=[2, 2], pads=[1, 1, 1, 1]),
             h.make_node("Add", ["c", "z"], ["s"], name="add"),
             h.make_node("LeakyRelu", ["s"], ["y"], name="act", alpha=0.2)]
    return model(nodes, [("x", T.FLOAT, [2, 2, 5, 5]), ("z", T.FLOAT, [2, 3, 3, 3])], [("y", T.FLOAT, [2, 3, 3, 3])],
                 inits), {"x": (2, 2, 5, 5), "z": (2, 3, 3, 3)}


def _case_pools():
    nodes = [h.make_node("AveragePool", ["x"], ["a"], name="avg", kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1),
             h.make_node("AveragePool", ["x"], ["b"], name="avg0", kernel_shape=[2, 2], pads=[1, 1, 0, 0]),
             h.make_node("GlobalMaxPool", ["x"], ["gm"], name="gmax"),
             h.make_node("GlobalAveragePool", ["x"], ["ga"], name="gavg")]
    return model(nodes, [("x", T.FLOAT, [1, 2, 6, 6])], [("a", T.FLOAT, None), ("b", T.FLOAT, None),
                                                         ("gm", T.FLOAT, None), ("ga", T.FLOAT, None)]), {"x": (1, 2, 6, 6)}


def _case_elementwise_and_softmax11():
    inits = {"k": random_tensor((4,), seed=8)}
    nodes = [h.make_node("Sigmoid", ["x"], ["sg"], name="sig"), h.make_node("Mul", ["x", "sg"], ["sw"], name="swish"),
             h.make_node("Add", ["sw", "k"], ["a"], name="addk"),
             h.make_node("Softmax", ["a"], ["y"], name="sm", axis=1)]
    return model(nodes, [("x", T.FLOAT, [2, 3, 4])], [("y", T.FLOAT, [2, 3, 4])], inits, opset=11), {"x": (2, 3, 4)}


def _case_grouped_convs():
    """Depthwise (SAME_UPPER, stride 2) and grouped with asymmetric strides: the direct route."""
    inits = {"dw": random_tensor((4, 1, 3, 3), seed=1), "db": random_tensor((4,), seed=2),
             "gw": random_tensor((6, 2, 3, 2), seed=3)}
    nodes = [h.make_node("Conv", ["x", "dw", "db"], ["d"], name="depthwise", group=4, strides=[2, 2],
                         auto_pad="SAME_UPPER"),
             h.make_node("Relu", ["d"], ["r"], name="relu"),
             h.make_node("Conv", ["r", "gw"], ["y"], name="grouped", group=2, strides=[1, 2], pads=[1, 0, 0, 1])]
    return model(nodes, [("x", T.FLOAT, [1, 4, 7, 7])], [("y", T.FLOAT, None)], inits), {"x": (1, 4, 7, 7)}


def _case_concat_split_transpose_batchnorm():
    """ShuffleNet's channel shuffle and split, a Concat, DenseNet's unfolded BatchNormalization."""
    bn = {k: random_tensor((6,), seed=i, low=0.5, high=1.5) for i, k in enumerate(("s", "bb", "m", "v"))}
    inits = {**bn, "g": np.array([1, 2, 3, 3, 3], np.int64), "back": np.array([1, 6, 3, 3], np.int64),
             "sizes": np.array([2, 4], np.int64)}
    nodes = [h.make_node("Concat", ["x", "x2"], ["c"], name="cat", axis=1),
             h.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], name="bn"),
             h.make_node("Reshape", ["n", "g"], ["r"], name="groups"),
             h.make_node("Transpose", ["r"], ["t"], name="shuffle", perm=[0, 2, 1, 3, 4]),
             h.make_node("Reshape", ["t", "back"], ["u"], name="ungroup"),
             h.make_node("Split", ["u", "sizes"], ["a", "b"], name="split", axis=1),
             h.make_node("Flatten", ["b"], ["fb"], name="flat"),
             h.make_node("Transpose", ["fb"], ["y"], name="matrix_t")]
    return model(nodes, [("x", T.FLOAT, [1, 2, 3, 3]), ("x2", T.FLOAT, [1, 4, 3, 3])],
                 [("a", T.FLOAT, None), ("y", T.FLOAT, None)], inits), {"x": (1, 2, 3, 3), "x2": (1, 4, 3, 3)}


CASES = {"gemm": _case_gemm, "grouped_convs": _case_grouped_convs,
         "concat_split_transpose_bn": _case_concat_split_transpose_batchnorm, "matmul": _case_matmul_two_inputs, "conv": _case_conv_stride_residual_leaky,
         "pools": _case_pools, "elementwise": _case_elementwise_and_softmax11,
         "fused_elementwise": _case_elementwise_and_softmax11}


@needs_cuda
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_kernel_family_matches_onnxruntime(case):
    from course.passes.fuse_elementwise import FuseElementwise

    m, shapes = CASES[case]()
    s = cuda_session(m, passes=[FuseElementwise()]) if case == "fused_elementwise" else cuda_session(m)
    assert on_cuda(s) == set(s.assignment()), s.describe_partition()
    if case in ("conv", "fused_elementwise"):  # the fused node is what runs
        want = {"conv": ("FusedConv", 4), "fused_elementwise": ("FusedElementwise", 2)}[case]
        assert [(st.spec.op_type, len(st.spec.inputs)) for st in s.plan.steps if st.spec.domain == "course"
                and st.spec.op_type not in COPIES] == [want]
    feeds = {k: random_tensor(shape, seed=i) for i, (k, shape) in enumerate(shapes.items())}
    for got, want in zip(s.run(None, feeds), ort_run(m, feeds)):
        assert_close(got, want, **F32)


@needs_cuda
def test_the_register_blocked_route_for_a_big_enough_product():
    from course.providers.cuda.gemm import route

    assert (route(128, 128, 4).name, route(127, 500, 4).name) == ("regblock", "tiled")
    nodes = [h.make_node("MatMul", ["a", "b"], ["y"], name="mm")]
    m = model(nodes, [("a", T.FLOAT, [128, 3])], [("y", T.FLOAT, [128, 130])], {"b": random_tensor((3, 130), seed=1)})
    a = random_tensor((128, 3), seed=2)
    assert_close(cuda_session(m).run(None, {"a": a})[0], ort_run(m, {"a": a})[0], **F32)


def test_what_cuda_does_not_claim():
    from course.providers.cuda.provider import CUDAExecutionProvider

    def spec(op, inputs, outputs, attrs=None, consts=(), opset=17, domain=""):
        f32 = np.dtype(np.float32)
        return NodeSpec("n", op, domain, opset, attrs or {}, [(f32 if d is None else d, s) for d, s in inputs],
                        [(f32, s) for s in outputs], constant_inputs=tuple(consts))
    f = None
    claims = CUDAExecutionProvider.claims.__get__(object.__new__(CUDAExecutionProvider))
    conv = dict(group=1, auto_pad="NOTSET", strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1], kernel_shape=[3, 3])
    assert claims(spec("Conv", [(f, (1, 2, 5, 5)), (f, (3, 2, 3, 3))], [(1, 3, 5, 5)], conv, consts=(1,)))
    assert claims(spec("Conv", [(f, (1, 4, 5, 5)), (f, (4, 1, 3, 3))], [(1, 4, 5, 5)], {**conv, "group": 4}, (1,)))
    assert not claims(spec("Conv", [(f, (1, 2, 5, 5)), (f, (3, 2, 3, 3))], [(1, 3, 5, 5)], conv))  # weight not constant
    assert not claims(spec("Conv", [(f, (1, 2, 5)), (f, (3, 2, 3))], [(1, 3, 5)], conv, (1,)))  # 1-D
    fused = {**conv, "activation": "Sigmoid", "activation_params": []}
    assert not claims(spec("FusedConv", [(f, (1, 2, 5, 5)), (f, (3, 2, 3, 3))], [(1, 3, 5, 5)], fused, (1,), 1, "course"))
    assert not claims(spec("Add", [(np.dtype(np.int64), (2,)), (np.dtype(np.int64), (2,))], [(2,)]))
    assert not claims(spec("Add", [(f, (2, 3)), (f, (3,))], [(2, 3)]))  # a run-time input that broadcasts
    assert claims(spec("Add", [(f, (2, 3)), (f, (3,))], [(2, 3)], consts=(1,)))  # a constant that does
    assert not claims(spec("Softmax", [(f, (2, 3))], [(2, 3)], {"axis": 0}))  # opset 13: the last axis only
    assert not claims(spec("Gemm", [(f, (3, 2)), (f, (3, 4))], [(2, 4)], {"transA": 1}))  # A is not constant
    assert not claims(spec("LRN", [(f, (1, 2, 3, 3))], [(1, 2, 3, 3)], {"size": 3}))
    assert not claims(spec("BatchNormalization", [(f, (1, 2, 3, 3))] + [(f, (2,))] * 4, [(1, 2, 3, 3)], {},
                           consts=(1, 2, 3)))  # the variance is computed at run time


def test_cuda_kernels_type_and_lower_for_a_real_gpu():
    """The simulator accepts code a GPU compile rejects: type and lower the provider's own kernels
    for compute capability 9.0 in a fresh process with the simulator off (no GPU needed)."""
    script = textwrap.dedent("""
        from numba import types
        from numba.core.typing.typeof import typeof
        from numba.cuda.compiler import compile_cuda
        from course.providers.cuda import batchnorm as B, concat as C, conv as V, epilogue as E, pool as P
        from course.providers.cuda import transpose as T
        f1, f2, f4, b = types.float32[:], types.float32[:, :], types.float32[:, :, :, :], types.boolean
        i64, shape3 = types.int64, types.UniTuple(types.int64, 3)
        act, win = typeof(E.Activation.of("Clip", [0.0, 6.0])), typeof(P.Window(*range(10)))
        kernels = [(E.conv_epilogue_kernel, (f1, f2, f1, f1, i64, act, b, b)),
                   (E.gemm_epilogue_kernel, (f2, f2, types.float32, types.float32, b)),
                   (P.pool2d_kernel, (f4, f4, win, b, b)), (P.row_reduce_kernel, (f1, f2, b)),
                   (V.direct_conv_kernel, (f4, f4, f4, f1, f4, typeof(V.ConvWindow(*range(7))), act, b, b)),
                   (C.copy_slab_kernel, (f2, f2, i64, i64, i64)), (B.channel_affine_kernel, (f1, f1, f1, f1, i64)),
                   (T.permute_kernel, (f1, f1, shape3, shape3))]
        for k, sig in kernels:
            compile_cuda(k.py_func, types.void, sig, cc=(9, 0))
        print("compiled", len(kernels))
    """)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "compiled 8" in out.stdout


@needs_cuda
@pytest.mark.skipif(simulator_on(),
                    reason="GPU timing: the simulator's times say nothing about a GPU (tests/cuda_report.py on a GPU)")
def test_gpu_digits_latency_is_below_a_millisecond_per_node():
    import time

    s = cuda_session(onnx.load(digits_model_path()))
    x = random_tensor((1, 1, 8, 8), seed=1)
    s.run(None, {"input": x})  # compile and upload the weights
    t0 = time.perf_counter()
    for _ in range(20):
        s.run(None, {"input": x})
    assert (time.perf_counter() - t0) / 20 < 1e-3 * len(s.plan.steps)
