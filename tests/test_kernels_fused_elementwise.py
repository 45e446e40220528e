"""Generated fused elementwise kernels against the reference program (the unfused ops), on the CPU
(@njit) and the CUDA target (simulator or GPU), and their traffic on the tracer: one load per input
element and one store per output element, where the unfused kernels move two arrays per op."""
from __future__ import annotations

import numpy as np
import pytest

from course.ops.fused_elementwise import evaluate, parse_program
from course.testing import assert_close, random_tensor
from kernels import trace
from kernels.elementwise import make_map_kernel, make_zip_kernel
from kernels.fused_elementwise import fused_elementwise, generate_source, make_kernel

PROGRAMS = ["t0 = Sigmoid(x0)\nt1 = Mul(x0, t0)",
            "t0 = Add(x0, x1)\nt1 = Relu(t0)\nt2 = Mul(t1, x2)\nt3 = Clip(t2, min=-0.5, max=0.25)",
            "t0 = Sub(x1, x0)\nt1 = Div(t0, x2)\nt2 = LeakyRelu(t1, alpha=0.3)\nt3 = Tanh(t2)\nt4 = Neg(t3)",
            "t0 = Abs(x0)\nt1 = Sqrt(t0)\nt2 = Exp(t1)\nt3 = Reciprocal(t2)"]
SHAPES = [((3, 5, 7),), ((2, 3, 4, 5), (3, 1, 1), (2, 3, 4, 5)), ((1, 33), (1, 33), (5, 1)), ((257,),)]


@pytest.mark.parametrize("target", ["cpu", "cuda"])
@pytest.mark.parametrize("case", range(len(PROGRAMS)))
def test_generated_kernel_equals_the_reference_program(case, target):
    program = PROGRAMS[case]
    inputs = [random_tensor(s, seed=i, low=-40 if case == 0 else 0.5, high=40 if case == 0 else 3)
              for i, s in enumerate(SHAPES[case])]
    want = evaluate(parse_program(program), inputs)
    got = fused_elementwise(*inputs, program=program, target=target)
    assert got.shape == want.shape and got.dtype == np.float32
    assert_close(got, want, rtol=1e-5, atol=1e-6, what=f"{target}: {program!r}")


def test_the_kernel_reads_each_input_once_and_writes_once():
    program = PROGRAMS[1]
    n = 1000  # not a multiple of the block: the grid-stride loop's guard matters
    xs = [random_tensor((n,), seed=i) for i in range(3)]
    out = np.zeros(n, np.float32)
    rep = trace.run(make_kernel(program, "cuda"), 2, 128, out, *xs).as_dict()
    assert rep["global_loads"] == 3 * n and rep["global_stores"] == n and not rep["out_of_bounds"]
    assert_close(out, evaluate(parse_program(program), xs), rtol=1e-5, atol=1e-6, what="traced")
    # unfused: Add, Relu, Mul, Clip are four kernels, each reading its inputs and writing its output
    unfused = 0
    t = np.zeros(n, np.float32)
    for k, args in ((make_zip_kernel(lambda a, b: a + b), (xs[0], xs[1])), (make_map_kernel(lambda a: max(a, 0.0)), (t,)),
                    (make_zip_kernel(lambda a, b: a * b), (t, xs[2])),
                    (make_map_kernel(lambda a: min(max(a, -0.5), 0.25)), (t,))):
        r = trace.run(k, 2, 128, np.zeros(n, np.float32), *args)
        unfused += r.global_loads + r.global_stores
    assert unfused == (3 + 2 + 3 + 2) * n and rep["global_loads"] + rep["global_stores"] == 4 * n


def test_source_is_printable_and_loads_inputs_into_locals():
    src = generate_source(parse_program(PROGRAMS[0]), 1, "cuda")
    assert src.startswith("@cuda.jit\ndef fused(out, x0):") and src.count("x0[i]") == 1
    assert "out[i] = t1" in src
    cpu = make_kernel(PROGRAMS[0], "cpu").source
    assert cpu.startswith("@njit") and "cuda" not in cpu
