"""In-place reuse: an elementwise op may write its output over an input that dies at that step.

The rule: the op computes each output element from the input elements at the same position
(so overwriting an element it has already read does no harm); the input is read by no later
step, and only once by this one (``Add(x, x)`` reads it twice); output and input have the same
dtype and size; and the input is not a graph output (those must survive to the end). The
planner then treats the two as one tensor living from the input's birth to the output's death.
"""
from __future__ import annotations

from typing import Any, Hashable, Iterable, Mapping, Sequence

from course.memory.liveness import Interval, plan_outputs, plan_steps

# ops whose output element i depends on input element i only (plus per-channel constants)
INPLACE_OPS = frozenset({
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "Selu", "HardSigmoid", "Softplus", "Clip",
    "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil",
    "Add", "Sub", "Mul", "Div", "Sum", "Max", "Min", "BatchNormalization",
})


def merge_inplace(steps: Sequence[tuple[Iterable, Iterable]], intervals: Mapping[Hashable, Interval],
                  sizes: Mapping[Hashable, int], candidates: Iterable[tuple[int, Hashable, Hashable]],
                  keep: Iterable[Hashable] = ()) -> tuple[dict, dict]:
    """Merge each ``(step, src, dst)`` candidate the rule allows: ``dst`` shares ``src``'s bytes.

    Returns ``(intervals, alias)``: the intervals with every merged ``dst`` folded into the
    tensor it shares with (chains such as BN -> Relu fold into the first), and
    ``alias = {dst: that tensor}``. The op-level half of the rule (elementwise, same dtype) is
    the caller's: ``plan_inplace_candidates`` checks it for a runtime plan.
    """
    merged, alias, keep = dict(intervals), {}, set(keep)
    for step, src, dst in candidates:
        root = alias.get(src, src)
        if (src in keep or root in keep or dst in alias or root not in merged or dst not in merged
                or sizes[src] != sizes[dst] or merged[root][1] != step
                or merged[dst][0] != step or list(steps[step][0]).count(src) != 1):
            continue
        merged[root] = (merged[root][0], merged.pop(dst)[1])
        alias[dst] = root
    return merged, alias


def with_aliases(offsets: Mapping[Hashable, int], alias: Mapping[Hashable, Hashable]) -> dict:
    """Offsets for every tensor, the merged ones at the offset of the tensor they share."""
    out = dict(offsets)
    out.update({dst: offsets[root] for dst, root in alias.items()})
    return out


def plan_inplace_candidates(plan: Any) -> list[tuple[int, int, int]]:
    """``(step, input slot, output slot)`` for each input of an ``INPLACE_OPS`` step whose dtype
    and static shape equal the output's (no broadcasting into a bigger output)."""
    out = []
    for i, st in enumerate(plan.steps):
        if st.spec.op_type not in INPLACE_OPS or not st.outs or st.outs[0] < 0:
            continue
        target = st.spec.outputs[0]
        for slot, t in zip(st.ins, st.spec.inputs):
            if slot >= 0 and t is not None and target is not None and _same_type(t, target):
                out.append((i, slot, st.outs[0]))
    return out


def _same_type(a, b) -> bool:
    return a[0] == b[0] and a[1] is not None and tuple(a[1]) == tuple(b[1])


def plan_merge_inplace(plan: Any, intervals: Mapping, sizes: Mapping) -> tuple[dict, dict]:
    """``merge_inplace`` over a runtime plan's steps, candidates and graph outputs."""
    return merge_inplace(plan_steps(plan), intervals, sizes, plan_inplace_candidates(plan),
                         keep=plan_outputs(plan))
