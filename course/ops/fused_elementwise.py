"""FusedElementwise (domain "course"): a connected region of elementwise ops as one node.

Written by the ``FuseElementwise`` pass, never by model authors. The region travels as a small
program in the string attribute ``program``, one step per line, inputs named ``x0, x1, ...``::

    t0 = Sigmoid(x0)
    t1 = Mul(x0, t0)
    t2 = LeakyRelu(t1, alpha=0.1)

The last step's result is the output. ``parse_program`` turns the text into ``Step``s, which
``kernels.fused_elementwise`` compiles into one kernel (Numba ``@njit`` or ``@cuda.jit``); this
reference runs the steps one after another with the reference ops, so the result is exactly that
of the unfused nodes. ``ELEMENTWISE`` lists the ops a program may use, with their arity and the
float attributes they take.
"""
from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

from course.errors import OpAttributeError
from course.ops.base import REQUIRED, InferContext, Op, broadcast_shapes
from course.ops.registry import lookup, register

# op -> (number of tensor arguments, float attributes it takes, in order)
ELEMENTWISE: dict[str, tuple[int, tuple[str, ...]]] = {
    "Add": (2, ()), "Sub": (2, ()), "Mul": (2, ()), "Div": (2, ()),
    "Relu": (1, ()), "Sigmoid": (1, ()), "Tanh": (1, ()), "Exp": (1, ()), "Neg": (1, ()),
    "Abs": (1, ()), "Sqrt": (1, ()), "Reciprocal": (1, ()),
    "LeakyRelu": (1, ("alpha",)), "Clip": (1, ("min", "max")),
}
_LINE = re.compile(r"^\s*(\w+)\s*=\s*(\w+)\((.*)\)\s*$")


class Step(NamedTuple):
    """One line of a program: ``out = op(*args, **attrs)``; ``args`` are names, ``attrs`` floats."""
    out: str
    op: str
    args: tuple[str, ...]
    attrs: dict


def format_step(step: Step) -> str:
    parts = list(step.args) + [f"{k}={float(v)!r}" for k, v in step.attrs.items()]
    return f"{step.out} = {step.op}({', '.join(parts)})"


def parse_program(text: str) -> list[Step]:
    """The steps of ``text``; OpAttributeError for an unknown op, a wrong arity or a name used
    before it is defined (inputs are ``x<k>``)."""
    steps, defined = [], set()
    for line in (s for s in text.splitlines() if s.strip()):
        m = _LINE.match(line)
        if m is None:
            raise OpAttributeError(f"program line {line!r} is not 'name = Op(args)'")
        out, op, body = m.groups()
        if op not in ELEMENTWISE:
            raise OpAttributeError(f"program uses {op!r}; FusedElementwise knows {sorted(ELEMENTWISE)}")
        parts = [p.strip() for p in body.split(",") if p.strip()]
        args = tuple(p for p in parts if "=" not in p)
        attrs = {k.strip(): float(v) for k, v in (p.split("=", 1) for p in parts if "=" in p)}
        arity, names = ELEMENTWISE[op]
        if len(args) != arity or set(attrs) != set(names):
            raise OpAttributeError(f"program line {line!r}: {op} takes {arity} argument(s) and {list(names)}")
        for a in args:
            if a not in defined and not re.fullmatch(r"x\d+", a):
                raise OpAttributeError(f"program line {line!r} reads {a!r} before it is defined")
        steps.append(Step(out, op, args, {k: attrs[k] for k in names}))
        defined.add(out)
    if not steps:
        raise OpAttributeError("the program is empty")
    return steps


def program_inputs(steps: list[Step]) -> int:
    """How many inputs (``x0 .. x<n-1>``) the program reads."""
    used = [int(a[1:]) for s in steps for a in s.args if re.fullmatch(r"x\d+", a)]
    return max(used) + 1 if used else 0


def run_step(step: Step, args: list[np.ndarray]) -> np.ndarray:
    """One step with the reference op (opset 13 semantics: Clip's bounds are inputs)."""
    op = lookup(step.op, 13)
    if step.op == "Clip":
        dt = args[0].dtype.type
        return op.compute(args[0], np.array(dt(step.attrs["min"])), np.array(dt(step.attrs["max"])))
    return op.compute(*args, **step.attrs)


def evaluate(steps: list[Step], inputs) -> np.ndarray:
    """The program's output for ``inputs`` (x0, x1, ...), step by step with the reference ops."""
    env = {f"x{i}": np.asarray(x) for i, x in enumerate(inputs)}
    for s in steps:
        env[s.out] = run_step(s, [env[a] for a in s.args])
    return env[steps[-1].out]


@register("FusedElementwise", since=1, domain="course")
class FusedElementwise(Op):
    attrs = {"program": REQUIRED}
    num_inputs = (1, None)

    def infer_shape(self, ctx: InferContext):
        steps = parse_program(ctx.attrs["program"])
        if program_inputs(steps) > len(ctx.inputs):
            raise OpAttributeError(f"the program reads {program_inputs(steps)} inputs, the node has {len(ctx.inputs)}")
        return [broadcast_shapes(*(t.shape if t is not None else None for t in ctx.inputs))]

    def compute(self, *inputs, program=""):
        return evaluate(parse_program(program), inputs)
