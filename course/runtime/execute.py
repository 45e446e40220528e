"""Running a bound plan: fetch each step's input slots, call its kernel, check and store the
outputs, drop the slots nobody reads any more -- in an arena when the plan has one.

Errors name the node: an ``EngineError`` a kernel raises gets ``node 'name' (OpType):`` in front;
any other exception becomes a ``KernelError`` saying which node's kernel failed and how.
"""
from __future__ import annotations

import contextlib
import itertools
from typing import Optional

import numpy as np

from course.errors import EngineError, KernelError
from course.providers.base import ExecutionProvider, NodeSpec
from course.runtime.arena import VIEW, ArenaPool, RunArena
from course.runtime.plan import BoundPlan


def prefix(spec: NodeSpec) -> str:
    return f"node {spec.name!r} ({spec.op_type}): "


def execute(bound: BoundPlan, slots: list, arenas: Optional[ArenaPool] = None) -> list:
    """Run every step over ``slots`` (inputs and constants already placed); returns ``slots``.

    With ``arenas`` (the plan's ``ArenaPool``) the run borrows one arena: a step whose kernel
    writes into views (destination passing) is handed its planned outputs' views (and its
    planned scratch, ``workspace=``, when its provider declared some); an array a
    kernel returns for a planned slot is copied into the slot's view; and an array that is arena
    memory the plan may reuse (a kernel's view of its input) is copied out, so no slot, and no
    graph output handed back, ever points into bytes a later step overwrites.
    """
    if arenas is None:
        return _run(bound, slots, None)
    with arenas.lease(slots) as run:
        return _run(bound, slots, run)


def _run(bound: BoundPlan, slots: list, run: Optional[RunArena]) -> list:
    """The loop, written out flat: on a model of small ops (ShuffleNet's reshapes and splits)
    each function call per step is a measurable share of the run."""
    ours = [p for p in bound.providers if not p.isolated]
    places = _NONE if run is None else run.places
    with _running(bound.providers):
        for st, fn, into, isolated, expect, place in zip(bound.plan.steps, bound.kernels, bound.into or _NONE,
                                                         bound.isolated, bound.expect, places):
            args = [slots[i] if i >= 0 else None for i in st.ins]
            try:
                if place is not None and place.into:  # destination passing: out are arena views
                    out = place.out
                    if isolated and ours:
                        _paused(ours, into, args, out, place.workspace)
                    elif place.workspace is None:
                        into(*args, out=out)
                    else:  # the kernel declared scratch: its bytes in the arena, for this step only
                        into(*args, out=out, workspace=place.workspace)
                elif isolated and ours:
                    out = _paused(ours, fn, args)
                else:
                    out = fn(*args)
            except Exception as e:
                raise _failed(st.spec, e) from (None if isinstance(e, EngineError) else e)
            if type(out) is not tuple:
                out = (out,)
            if len(out) < len(st.outs):
                raise KernelError(f"{prefix(st.spec)}kernel returned {len(out)} output(s), "
                                  f"the node needs {len(st.outs)}")
            for s, arr, (dtype, shape), dst in zip(st.outs, out, expect, _NONE if place is None else place.out):
                if s >= 0:
                    if type(arr) is not np.ndarray or arr.dtype != dtype or (shape is not None and arr.shape != shape):
                        arr = _check_output(st.spec, arr, dtype, shape)
                    if place is not None and arr is not dst:
                        arr = _settle(arr, dst, run.buffer, args[0] if args else None)
                    slots[s] = arr
            for s in st.free:
                slots[s] = None
    return slots


_NONE = itertools.repeat(None)  # "nothing for any step": zipped beside a plan's steps


def _running(providers):
    """Every provider's ``running()`` context as one; the providers that keep the base class's
    (nothing: the reference's) are left out, and one context is returned as it is."""
    active = [p for p in providers if type(p).running is not ExecutionProvider.running]
    if len(active) == 1:
        return active[0].running()
    return _all_running(active)


@contextlib.contextmanager
def _all_running(providers):
    with contextlib.ExitStack() as stack:
        for p in providers:
            stack.enter_context(p.running())
        yield


def _settle(arr, dst, buffer: np.ndarray, x):
    """Where an array a kernel returned goes in an arena run: copied into its planned view
    ``dst``; kept as it is; or copied out, when it is arena memory the plan may reuse."""
    if type(arr) is not np.ndarray:
        return arr  # a device array: never arena memory
    if type(dst) is np.ndarray and dst.shape == arr.shape:
        np.copyto(dst, arr)
        return dst
    if not np.may_share_memory(arr, buffer):
        return arr
    if dst is VIEW and x is not None and np.may_share_memory(arr, x):
        return arr  # a view of the step's input, whose bytes stay reserved while the view is read
    return arr.copy()


def _paused(ours, fn, args, out=None, workspace=None):
    """Call an isolated provider's kernel with every provider of ours paused around it."""
    with contextlib.ExitStack() as pause:
        for p in ours:
            pause.enter_context(p.paused())
        if out is None:
            return fn(*args)
        return fn(*args, out=out) if workspace is None else fn(*args, out=out, workspace=workspace)


def _failed(spec: NodeSpec, e: Exception) -> Exception:
    """The error to raise for a kernel that raised ``e``: an EngineError with the node in front,
    anything else as a KernelError naming the node."""
    if isinstance(e, EngineError):
        msg = str(e)
        return e if msg.startswith(prefix(spec)) else type(e)(prefix(spec) + msg)
    return KernelError(f"{prefix(spec)}kernel failed: {type(e).__name__}: {e}")


def _check_output(spec: NodeSpec, arr, dtype, shape: Optional[tuple]) -> np.ndarray:
    """Slow path of the output check: accept numpy scalars and device arrays (a device provider's
    tensors: ``__cuda_array_interface__``, or the CUDA simulator's ``__cuda_ndarray__``, with a
    dtype and a shape), explain anything else."""
    if isinstance(arr, np.generic):
        arr = np.asarray(arr)
    on_device = getattr(arr, "__cuda_ndarray__", False) or hasattr(arr, "__cuda_array_interface__")
    if not isinstance(arr, np.ndarray) and not on_device:
        raise KernelError(f"{prefix(spec)}kernel returned {type(arr).__name__}, not a numpy array")
    if dtype is not None and arr.dtype != dtype:
        raise KernelError(f"{prefix(spec)}kernel returned dtype {arr.dtype}, expected {dtype}")
    if shape is not None and arr.shape != shape:
        raise KernelError(f"{prefix(spec)}kernel returned shape {arr.shape}, expected {shape}")
    return arr
