"""Concatenation in place ("alias into"): the producers of a Concat's inputs write straight into
their chunk of its output, and the Concat has nothing left to copy.

Along an axis whose leading dims are all 1 (NCHW channels at batch 1), each input of a Concat is
one contiguous run of the output's bytes, starting after the bytes of the inputs before it. An
input may live there (be a *chunk* of the output, its *container*) when:

- it is planned (written by a step, not a graph input or weight) and takes part in no in-place
  pair (a container may be overwritten in place once the Concat is done: its chunks are dead);
- it may itself be the output of an earlier Concat (DenseNet's concat of the last concat and
  one new layer): that one's chunks then lie inside this output too, and nothing is copied;
- the Concat is its last read, and the Concat reads it once: nothing after the Concat could see
  it change when the container is written (or later overwritten in place);
- its chunk starts at a multiple of the alignment and ends inside the container.

The planner then places the container as one tensor living from the first of its chunks' births
to its own last read, and each chunk at the container's offset plus its chunk's byte offset
(a chain of nested chunks: the sum of the offsets down to the outermost container).
``validate(..., within=)`` checks a placement of that shape.
"""
from __future__ import annotations

from typing import Any, Hashable, Iterable, Mapping, Optional, Sequence

import numpy as np

from course.memory.liveness import Interval
from course.memory.sizes import DEFAULT_ALIGNMENT, static_shape

Candidate = tuple[int, Hashable, list]  # (concat step, container, [(input, byte offset), ...])


def merge_into(steps: Sequence[tuple[Iterable, Iterable]], intervals: Mapping[Hashable, Interval],
               sizes: Mapping[Hashable, int], candidates: Iterable[Candidate],
               alignment: int = DEFAULT_ALIGNMENT, alias: Optional[Mapping[Hashable, Hashable]] = None
               ) -> tuple[dict, dict]:
    """Fold each chunk the rule (see the module) allows into its container.

    Returns ``(intervals, within)``: the intervals without the chunks, each container's starting
    at the first of its chunks' births; ``within = {chunk: (container, byte offset)}`` (the
    container of a chunk may be a chunk in turn). ``alias``: the in-place pairs ``{dst: root}``
    (course.memory.inplace): neither may be a chunk, and a dst no container.
    """
    alias = alias or {}
    merged, within, paired = dict(intervals), {}, set(alias) | set(alias.values())
    for step, container, parts in sorted(candidates, key=lambda c: c[0]):
        if container not in merged or container in alias:
            continue
        reads = list(steps[step][0])
        taken = [(t, off) for t, off in parts
                 if t in merged and t not in paired and t != container
                 and merged[t][1] == step and reads.count(t) == 1 and off % alignment == 0
                 and off + sizes[t] <= sizes[container]]
        if not taken:
            continue
        first = min([merged[container][0]] + [merged[t][0] for t, _ in taken])
        merged[container] = (first, merged[container][1])
        for t, off in taken:
            within[t] = (container, off)
            del merged[t]
    return merged, within


def with_chunks(offsets: Mapping[Hashable, int], within: Mapping[Hashable, tuple[Hashable, int]]) -> dict:
    """Offsets for every tensor, each chunk at its container's offset plus its byte offset."""
    out = dict(offsets)

    def at(t):
        if t not in out:
            c, off = within[t]
            out[t] = at(c) + off
        return out[t]

    for t in within:
        at(t)
    return out


def plan_concat_candidates(plan: Any) -> list[Candidate]:
    """``(step, output slot, [(input slot, byte offset), ...])`` for each Concat of a runtime plan
    whose output and inputs have one dtype and fully static shapes with every dim before the
    axis equal to 1 (static in the plan itself: a symbolic dim planned at its largest size would
    move the chunks in a smaller run)."""
    out = []
    for i, st in enumerate(plan.steps):
        spec = st.spec
        if spec.op_type != "Concat" or len(st.outs) != 1 or st.outs[0] < 0 or spec.outputs[0] is None:
            continue
        dtype, shape = spec.outputs[0][0], static_shape(spec.outputs[0][1])
        types = [t for t in spec.inputs]
        if shape is None or any(t is None or t[0] != dtype or static_shape(t[1]) is None for t in types):
            continue
        axis = spec.attrs.get("axis", 0) % len(shape)
        if any(d != 1 for d in shape[:axis]):
            continue
        parts, start = [], 0
        for slot, t in zip(st.ins, types):
            if slot >= 0:
                parts.append((slot, start))
            start += int(np.prod(t[1], dtype=np.int64)) * np.dtype(dtype).itemsize
        out.append((i, st.outs[0], parts))
    return out

