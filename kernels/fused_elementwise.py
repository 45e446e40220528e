"""One kernel per fused elementwise region, generated from its program (``course.FusedElementwise``).

``generate_source(steps, n_inputs, target)`` writes the Python source of a kernel
``fused(out, x0, x1, ...)`` over flat arrays: ``target="cuda"`` gives a ``@cuda.jit`` kernel with
a grid-stride loop (as in ``kernels.elementwise``), ``target="cpu"`` a Numba ``@njit`` loop. The
body loads each input **once** into a local, evaluates the steps on locals (registers on a GPU),
and stores the output **once**, so a region of k ops moves n_inputs + 1 arrays instead of about
2k. ``print(kernel.source)`` shows what was generated::

    @cuda.jit
    def fused(out, x0):
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for i in range(start, out.shape[0], stride):
            v0 = x0[i]
            t0 = (1.0 / (1.0 + math.exp(-v0)) if v0 >= 0.0 else math.exp(v0) / (1.0 + math.exp(v0)))
            t1 = (v0 * t0)
            out[i] = t1

``fused_elementwise(*inputs, program=...)`` is the host side with ``Op.compute``'s contract (a
``KernelProvider`` kernel): inputs broadcast to the output's shape, one launch, float32 out.
"""
from __future__ import annotations

import linecache
import math
from typing import Callable

import numba
import numpy as np
from numba import cuda

from course.ops.fused_elementwise import Step, parse_program, program_inputs
from kernels.launch import THREADS, ceil_div

MAX_BLOCKS = 1024

# op -> Python expression over the argument names a, b and the step's attributes. Sigmoid takes
# exp of a non-positive number only, so it never overflows (as the reference op does).
EXPRESSIONS: dict[str, str] = {
    "Add": "({a} + {b})", "Sub": "({a} - {b})", "Mul": "({a} * {b})", "Div": "({a} / {b})",
    "Relu": "max({a}, 0.0)",
    "Sigmoid": "(1.0 / (1.0 + math.exp(-{a})) if {a} >= 0.0 else math.exp({a}) / (1.0 + math.exp({a})))",
    "Tanh": "math.tanh({a})", "Exp": "math.exp({a})", "Neg": "(-{a})", "Abs": "abs({a})",
    "Sqrt": "math.sqrt({a})", "Reciprocal": "(1.0 / {a})",
    "LeakyRelu": "({a} if {a} >= 0.0 else {alpha!r} * {a})",
    "Clip": "min(max({a}, {min!r}), {max!r})",  # max first: the upper bound wins when min > max
}


def expression(step: Step, names: dict[str, str]) -> str:
    """The Python expression of ``step`` with its arguments renamed by ``names``."""
    args = [names.get(a, a) for a in step.args]
    return EXPRESSIONS[step.op].format(**dict(zip("ab", args)), **step.attrs)


def generate_source(steps: list[Step], n_inputs: int, target: str = "cuda", name: str = "fused") -> str:
    """The source of ``name(out, x0, ..., x<n-1>)`` computing ``steps`` elementwise on flat arrays."""
    if target not in ("cuda", "cpu"):
        raise ValueError(f"target must be 'cuda' or 'cpu', got {target!r}")
    params = ", ".join(["out"] + [f"x{k}" for k in range(n_inputs)])
    if target == "cuda":
        head = ["@cuda.jit", f"def {name}({params}):", "    start = cuda.grid(1)", "    stride = cuda.gridsize(1)",
                "    for i in range(start, out.shape[0], stride):"]
    else:
        head = ["@njit", f"def {name}({params}):", "    for i in range(out.shape[0]):"]
    names = {f"x{k}": f"v{k}" for k in range(n_inputs)}
    body = [f"        v{k} = x{k}[i]" for k in range(n_inputs)]  # each input read once
    body += [f"        {s.out} = {expression(s, names)}" for s in steps]
    body.append(f"        out[i] = {steps[-1].out}")
    return "\n".join(head + body) + "\n"


def compile_source(source: str, name: str = "fused") -> Callable:
    """Execute generated ``source`` and return its kernel, with ``.source`` set for printing."""
    filename = f"<fused-kernel-{abs(hash(source)):x}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # inspect.getsource
    namespace = {"cuda": cuda, "njit": numba.njit, "math": math}
    exec(compile(source, filename, "exec"), namespace)
    kernel = namespace[name]
    kernel.source = source
    return kernel


_CACHE: dict[tuple[str, str], Callable] = {}


def make_kernel(program: str, target: str = "cpu") -> Callable:
    """The compiled kernel of a FusedElementwise ``program`` (cached per program and target)."""
    key = (program, target)
    if key not in _CACHE:
        steps = parse_program(program)
        _CACHE[key] = compile_source(generate_source(steps, program_inputs(steps), target))
    return _CACHE[key]


def fused_elementwise(*inputs: np.ndarray, program: str, target: str = "cpu") -> np.ndarray:
    """Run ``program`` on ``inputs`` (broadcast to one shape) with one generated kernel; float32."""
    shape = np.broadcast_shapes(*(np.shape(x) for x in inputs))
    flat = [np.ascontiguousarray(np.broadcast_to(x, shape), dtype=np.float32).reshape(-1) for x in inputs]
    out = np.empty(int(np.prod(shape)), np.float32)
    kernel = make_kernel(program, target)
    if target == "cpu":
        kernel(out, *flat)
    elif out.size:
        # Launch configuration: THREADS per block, enough blocks to cover n, capped (grid-stride loop).
        blocks = max(1, min(MAX_BLOCKS, ceil_div(out.size, THREADS)))
        d_out = cuda.to_device(out)
        kernel[blocks, THREADS](d_out, *(cuda.to_device(x) for x in flat))
        out = d_out.copy_to_host()
    return out.reshape(shape)
