# Hidden preamble: run by the grading kernel before the notebook's first cell (never shown).
# Numba warns about launch configurations and simulator use; on stderr such a warning would
# zero a passing test cell (nbgrader reads stderr as failure), so Numba's warnings are dropped.
# Learners' own code still raises normally: this touches only the warnings machinery.
import warnings as _ag_warnings

_ag_warnings.resetwarnings()
_ag_warnings.simplefilter("default")
for _ag_mod in (r"numba(\..*)?", r"numba_cuda(\..*)?", r"llvmlite(\..*)?"):
    _ag_warnings.filterwarnings("ignore", module=_ag_mod)
_ag_show = _ag_warnings.showwarning


def _ag_showwarning(message, category, filename, lineno, file=None, line=None):
    # Numba's categories (NumbaPerformanceWarning, NumbaDeprecationWarning...) are attributed to
    # the caller's line, so the module filter above misses them: match on where the class lives.
    if getattr(category, "__module__", "").split(".")[0] in ("numba", "numba_cuda", "llvmlite"):
        return
    _ag_show(message, category, filename, lineno, file, line)


_ag_warnings.showwarning = _ag_showwarning
del _ag_mod, _ag_warnings

# The graded tests' guard (course/grading.py) keeps copies of numpy, course.testing and a few
# builtins taken now, before the notebook's first cell: what learner code patches later is undone
# at the start of every test cell. A course without the guard grades as before.
try:
    import course.grading as _ag_grading  # noqa: F401
    import course.testing as _ag_testing  # noqa: F401
    _ag_grading._snapshot_new()
    del _ag_grading, _ag_testing
except ImportError:
    pass
