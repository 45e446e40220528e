"""Helpers that the graded tests and the test suite share.

Graded tests must not be fooled by learner code: they compare with numpy functions captured here
at import (before any learner cell runs), check types first, and never call methods on objects a
learner returned to decide equality.
"""
from __future__ import annotations

import numpy as _np

# Private copies taken at import time so a learner cell that monkeypatches numpy cannot make
# a wrong answer compare equal.
_asarray = _np.asarray
_isclose = _np.isclose
_abs = _np.abs
_isnan = _np.isnan
_isinf = _np.isinf
_array_equal = _np.array_equal
_array = _np.array
_argwhere = _np.argwhere
_dtype = _np.dtype
_ndarray = _np.ndarray
_generic = _np.generic
_float64 = _np.float64
_default_rng = _np.random.default_rng

# (rtol, atol) per dtype: fp32 results from differently ordered sums agree to ~1e-5 relative.
TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-9, 1e-12),
    "float32": (1e-5, 1e-6),
    "float16": (1e-2, 1e-3),
    "bfloat16": (2e-2, 1e-2),
}


def tolerance(dtype) -> tuple[float, float]:
    name = _dtype(dtype).name
    if name in TOLERANCES:
        return TOLERANCES[name]
    return (0.0, 0.0)  # integers and booleans must match exactly


def assert_close(actual, expected, *, rtol: float | None = None, atol: float | None = None,
                 check_dtype: bool = True, check_shape: bool = True, what: str = "result") -> None:
    """Assert ``actual`` equals ``expected`` within dtype-aware tolerances; readable messages.

    Tolerances come from the expected dtype unless given. NaNs must match position for position.
    """
    if not isinstance(actual, (_ndarray, _generic, int, float, bool, list, tuple)):
        raise AssertionError(f"{what}: expected an array, got {type(actual).__name__}")
    exp = _asarray(expected)
    act = _asarray(actual)
    if type(act) is not _ndarray:  # a subclass could override comparisons
        act = _array(act, copy=True).view(_ndarray)
    if check_shape and act.shape != exp.shape:
        raise AssertionError(f"{what}: shape {act.shape} != expected {exp.shape}")
    if check_dtype and act.dtype != exp.dtype:
        raise AssertionError(f"{what}: dtype {act.dtype} != expected {exp.dtype}")
    r, a = tolerance(exp.dtype)
    rtol = r if rtol is None else rtol
    atol = a if atol is None else atol
    if exp.dtype.kind in "biu" and rtol == 0 and atol == 0:
        if not _array_equal(act, exp):
            bad = int((act != exp).sum()) if act.shape == exp.shape else "?"
            raise AssertionError(f"{what}: {bad} element(s) differ from the expected integers")
        return
    a64 = act.astype(_float64)
    e64 = exp.astype(_float64)
    ok = _isclose(a64, e64, rtol=rtol, atol=atol, equal_nan=True)
    if not bool(ok.all()):
        idx = tuple(int(i) for i in _argwhere(~ok)[0])
        err = float(_abs(a64 - e64)[~ok].max())
        raise AssertionError(
            f"{what}: {int((~ok).sum())} of {ok.size} elements differ (first at {idx}: "
            f"got {a64[idx]!r}, expected {e64[idx]!r}; max abs error {err:.3g}, rtol={rtol}, atol={atol})")


def rng(seed: int = 0) -> _np.random.Generator:
    """The seeded generator every test uses, so failures reproduce."""
    return _default_rng(seed)


def random_tensor(shape, dtype="float32", seed: int = 0, low: float = -1.0, high: float = 1.0) -> _np.ndarray:
    """Seeded uniform data in [low, high) (integers: inclusive range)."""
    g = rng(seed)
    dt = _dtype(dtype)
    if dt.kind in "iu":
        return g.integers(int(low), int(high) + 1, size=shape).astype(dt)
    if dt.kind == "b":
        return g.random(shape) < 0.5
    return g.uniform(low, high, size=shape).astype(dt)


AWKWARD_SIZES = (1, 7, 31, 33, 63, 65, 100)  # not multiples of a warp, block or tile

from course.models.builders import MODEL_NAMES, build_model  # noqa: E402,F401  (seeded ONNX models)
