"""The guard every graded test cell runs under: no credit for the reference, fast one-line failures.

A test cell starts with ``_g = begin("01_containers", "vector_push_back")`` and ends with
``_g.end()``. ``begin`` looks the exercise up in ``course.grading_rules`` and, before any assert:

* undoes what learner code did to numpy, ``course.testing``, the tracer and a few builtins (their
  originals were captured when this module was imported: the grader imports it before the
  notebook's first cell), so tests compare with the grader's own copies;
* says "exercise N is not implemented yet" in one line when an answer is still the stub;
* checks that the learner wrote the graded functions and methods themselves: a class must define
  them in its own body (not inherit them), a name must not be an alias of the reference;
* rejects the restrictions the exercise states (``np.transpose`` in a permute, ``float16`` in a
  bit-level conversion, ...) by reading the answer's source;
* makes every reference object the exercise names fail when learner code calls it, with a message
  saying which reference was used and what to write instead (the function's code is swapped, so an
  alias taken earlier is caught too; calls from the course's own code and from tests still work).

``end()`` takes the traps away and fails the test if learner code swallowed a trap's error or
changed numpy while the tests ran. Demo cells call ``ready(lesson, exercise)`` to print one line
instead of a traceback when they need an exercise that is not solved yet.
"""
from __future__ import annotations

import ast
import builtins
import inspect
import linecache
import os
import sys
import sysconfig
import textwrap
import types

import numpy as _np

from course.grading_rules import RULES, Rule, exercise_number

_MISSING = object()
_FROZEN_BUILTINS = ("isinstance", "issubclass", "len", "all", "any", "sum", "abs", "min", "max",
                    "sorted", "range", "type", "int", "float", "tuple", "list", "dict", "set",
                    "bool", "str", "repr", "zip", "enumerate", "iter", "next", "getattr",
                    "hasattr", "id", "round", "divmod", "pow", "map", "filter", "reversed")
# Modules whose attributes tests rely on; snapshotted when first seen, restored at each begin().
_WATCHED = ("numpy", "numpy.linalg", "numpy.random", "numpy.testing", "numpy.lib.stride_tricks",
            "math", "course.testing", "course.grading", "course.grading_rules", "kernels.trace",
            "kernels.trace.checked", "kernels.trace.report")
_SNAPSHOTS: dict[str, tuple[types.ModuleType, dict]] = {}


def _trusted_dirs() -> tuple[str, ...]:
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = {here, os.path.join(os.path.dirname(here), "kernels"), sys.prefix, sys.base_prefix,
            sys.exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.add(path)
    return tuple(sorted({os.path.realpath(d) + os.sep for d in dirs}))


_TRUSTED = _trusted_dirs()
_TEST_FILES: set[str] = set()   # code files of the test cells that called begin()
_LIBRARY_FILES: dict[str, bool] = {}


def _is_library(filename: str) -> bool:
    """True for code of the course, the kernels, numpy, the standard library...: not a notebook cell."""
    known = _LIBRARY_FILES.get(filename)
    if known is None:
        real = os.path.realpath(filename) if os.path.isabs(filename) else filename
        known = _LIBRARY_FILES[filename] = (
            real.startswith(_TRUSTED) and os.path.isfile(real) and "ipykernel_" not in real)
    return known


def _is_learner(filename: str) -> bool:
    return filename not in _TEST_FILES and not _is_library(filename)


# -- snapshots of the modules tests compare with ---------------------------------------------
def _snapshot_new() -> None:
    for name in _WATCHED:
        mod = sys.modules.get(name)
        if name not in _SNAPSHOTS and isinstance(mod, types.ModuleType):
            _SNAPSHOTS[name] = (mod, dict(vars(mod)))
    if "builtins" not in _SNAPSHOTS:
        _SNAPSHOTS["builtins"] = (builtins, {k: vars(builtins)[k] for k in _FROZEN_BUILTINS})


def _restore_modules() -> list[str]:
    """Put back every watched attribute learner code replaced; return what was changed."""
    changed = []
    for name, (mod, saved) in _SNAPSHOTS.items():
        if name != "builtins" and sys.modules.get(name, mod) is not mod:
            sys.modules[name] = mod
            changed.append(f"sys.modules[{name!r}]")
        live = vars(mod)
        for key, value in saved.items():
            if live.get(key, _MISSING) is not value:
                live[key] = value
                changed.append(f"{name}.{key}")
    return changed


# -- the stub and the learner's own definitions ------------------------------------------------
def _function_of(obj):
    """The Python function behind a function, method, property, or CUDA kernel; else None."""
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, property):
        obj = obj.fget
    if isinstance(obj, types.FunctionType):
        return obj
    if isinstance(obj, type):
        return None
    for attr in ("py_func", "fn"):  # numba's dispatcher / the CUDA simulator's kernel
        inner = getattr(obj, attr, None)
        if isinstance(inner, types.FunctionType):
            return inner
    return None


def _source(fn) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return ""


def _is_stub(fn) -> bool:
    src = _source(fn)
    return "raise NotImplementedError()" in src and "# YOUR CODE HERE" in src


def _resolve(namespace: dict, dotted: str):
    """``("MyVector", push_back function or _MISSING, owner class or None)`` for ``MyVector.push_back``."""
    head, _, attr = dotted.partition(".")
    obj = namespace.get(head, _MISSING)
    if not attr or obj is _MISSING:
        return obj, None
    if not isinstance(obj, type):
        return _MISSING, obj
    return obj.__dict__.get(attr, _MISSING), obj


class ReferenceUsed(AssertionError):
    """Learner code leaned on the reference implementation of the exercise it answers."""


class _Answer:
    def __init__(self, rule: Rule, namespace: dict):
        self.rule, self.ns = rule, namespace

    def functions(self) -> dict[str, types.FunctionType]:
        out = {}
        for dotted in self.rule.defines:
            obj, _ = _resolve(self.ns, dotted)
            fn = _function_of(obj) if obj is not _MISSING else None
            if fn is not None:
                out[dotted] = fn
        return out

    def missing_or_stub(self) -> list[str]:
        todo = []
        for dotted in self.rule.defines:
            head = dotted.split(".")[0]
            if head not in self.ns:
                todo.append(dotted)
                continue
            obj, _ = _resolve(self.ns, dotted)
            fn = _function_of(obj) if obj is not _MISSING else None
            if fn is not None and _is_stub(fn):
                todo.append(dotted)
        return todo

    def ownership_problems(self) -> list[str]:
        problems = []
        for dotted in self.rule.defines:
            obj, owner = _resolve(self.ns, dotted)
            if obj is _MISSING and owner is not None and isinstance(owner, type):
                cls, _, attr = dotted.partition(".")
                base = next((b for b in owner.__mro__[1:] if attr in b.__dict__), None)
                where = f" from {base.__module__}.{base.__qualname__}" if base is not None else ""
                problems.append(f"{cls} does not define {attr} itself (it inherits it{where}): "
                                f"write {attr} in the class body")
                continue
            if obj is _MISSING:
                problems.append(f"{dotted} is not a class with a method of that name")
                continue
            fn = _function_of(obj)
            if fn is None:
                problems.append(f"{dotted} must be a function you define, not {type(obj).__name__}")
            elif not _is_learner(fn.__code__.co_filename):
                mod = getattr(fn, "__module__", "?")
                problems.append(f"{dotted} is {mod}.{fn.__qualname__} from the course's own code: "
                                "write it yourself")
        return problems

    def restriction_problems(self) -> list[str]:
        """Stated restrictions, read from the source of the answer cell(s) that define the answer."""
        if not self.rule.restrict:
            return []
        problems = set()
        files = {fn.__code__.co_filename for fn in self.functions().values()}
        for filename in sorted(files):
            try:
                tree = ast.parse("".join(linecache.getlines(filename)))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                for needle, why in self.rule.restrict:
                    if _matches(node, needle):
                        problems.add(f"your answer uses {needle.strip(chr(39))} "
                                     f"(line {getattr(node, 'lineno', '?')} of the cell): {why}")
        return sorted(problems)


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _matches(node, needle: str) -> bool:
    """``'f2'``: that string; ``.T``: any attribute T; ``np.x``: numpy's x; ``name``: that name."""
    if needle.startswith("'"):
        return isinstance(node, ast.Constant) and node.value == needle.strip("'")
    if needle.startswith("."):
        return isinstance(node, ast.Attribute) and node.attr == needle[1:]
    if "." in needle:
        if not isinstance(node, ast.Attribute):
            return False
        first, _, rest = _dotted(node).partition(".")
        want_first, _, want_rest = needle.partition(".")
        same_module = first in ("np", "numpy", "_np") if want_first == "np" else first == want_first
        return same_module and rest == want_rest
    return isinstance(node, ast.Name) and node.id == needle or \
        isinstance(node, ast.alias) and needle in (node.name, node.name.split(".")[0])


# -- traps on the reference objects ------------------------------------------------------------
def _objects(spec: str) -> list:
    """Functions (and kernels) named by ``module:qualname`` or ``module.*`` (a whole module/package)."""
    mod_name, _, qual = spec.partition(":")
    if spec.endswith(".*"):
        prefix = spec[:-2]
        if prefix not in sys.modules:  # an answer may import it inside the function it traps
            try:
                __import__(prefix)
            except ImportError:
                return []
        out = []
        for name, mod in list(sys.modules.items()):
            if (name == prefix or name.startswith(prefix + ".")) and isinstance(mod, types.ModuleType):
                for value in list(vars(mod).values()):
                    if getattr(value, "__module__", None) == name:
                        out.append(value)
                        if isinstance(value, type):
                            out.extend(value.__dict__.values())
        return out
    mod = sys.modules.get(mod_name)
    if mod is None:
        try:
            mod = __import__(mod_name, fromlist=["_"])
        except ImportError:
            return []
    obj = mod
    for part in qual.split("."):
        obj = getattr(obj, part, _MISSING) if not isinstance(obj, type) else obj.__dict__.get(part, _MISSING)
        if obj is _MISSING:
            return []
    return [obj]


class _Trap:
    """Swaps a reference function's code for a checkpoint while a test runs."""

    _KEY = "__course_grading_trap__"

    def __init__(self, guard: "Guard"):
        self.guard = guard
        self.swapped: dict[types.FunctionType, tuple] = {}
        self.kernels: dict[int, str] = {}
        self.launch_patches: list[tuple[type, str, object]] = []

    def install(self, spec: str) -> None:
        for obj in _objects(spec):
            fn = _function_of(obj)
            if isinstance(obj, types.FunctionType) or isinstance(obj, (staticmethod, classmethod, property)):
                if fn is not None and fn not in self.swapped and _is_library(fn.__code__.co_filename):
                    self._swap(fn, spec)
            elif fn is not None and hasattr(type(obj), "__getitem__"):  # a CUDA kernel: launching it is the use
                self.kernels[id(obj)] = f"{spec} ({fn.__qualname__})"
                self._patch_launch(type(obj))

    def _swap(self, fn, spec: str) -> None:
        code = fn.__code__
        orig = types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
        orig.__kwdefaults__ = fn.__kwdefaults__
        key = len(_REGISTRY)
        _REGISTRY.append((orig, f"{fn.__module__}.{fn.__qualname__}"))
        fn.__globals__[self._KEY] = _checkpoint
        had_wrapped = "__wrapped__" in fn.__dict__
        fn.__code__ = _wrapper_code(code.co_freevars, key)
        if not had_wrapped:
            fn.__wrapped__ = orig  # inspect.signature still sees the real parameters
        self.swapped[fn] = (code, had_wrapped)

    def _patch_launch(self, cls: type) -> None:
        if any(c is cls for c, _, _ in self.launch_patches):
            return
        original = cls.__dict__.get("__getitem__", _MISSING)
        base = cls.__getitem__
        kernels, guard = self.kernels, self.guard

        def __getitem__(self, config):
            caller = sys._getframe(1).f_code
            if id(self) in kernels and _is_learner(caller.co_filename):
                guard.violation(kernels[id(self)], caller.co_name)
            return base(self, config)
        cls.__getitem__ = __getitem__
        self.launch_patches.append((cls, "__getitem__", original))

    def remove(self) -> None:
        for fn, (code, had_wrapped) in self.swapped.items():
            fn.__code__ = code
            if not had_wrapped:
                fn.__dict__.pop("__wrapped__", None)
        self.swapped.clear()
        for cls, name, original in self.launch_patches:
            if original is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
        self.launch_patches.clear()


_WRAPPERS: dict[tuple, types.CodeType] = {}
_REGISTRY: list[tuple] = []  # (original function, its name) per swapped code, by key


def _wrapper_code(freevars: tuple, key: int) -> types.CodeType:
    """Code that hands its arguments to ``_checkpoint``, with the free variables the original has
    (a method using ``super()`` closes over ``__class__``; a code swap must keep that count)."""
    sig = (freevars, key)
    if sig not in _WRAPPERS:
        cells = "".join(f"    {v} = None\n" for v in freevars)
        uses = "".join(f"        {v}\n" for v in freevars)
        src = (f"def _outer():\n{cells}    def _trapped(*args, **kwargs):\n{uses}"
               f"        return __course_grading_trap__({key}, args, kwargs)\n"
               f"    return _trapped\n")
        scope: dict = {}
        exec(compile(src, "<course.grading trap>", "exec"), scope)
        _WRAPPERS[sig] = scope["_outer"]().__code__
    return _WRAPPERS[sig]


def _checkpoint(key: int, args, kwargs):
    orig, name = _REGISTRY[key]
    guard = Guard.active
    caller = sys._getframe(2).f_code
    if guard is not None and _is_learner(caller.co_filename):
        guard.violation(name, caller.co_name)
    return orig(*args, **kwargs)


# -- the guard -----------------------------------------------------------------------------------
class Guard:
    active: "Guard | None" = None

    def __init__(self, lesson: str, exercise: str, rule: Rule, namespace: dict):
        self.lesson, self.exercise, self.rule, self.ns = lesson, exercise, rule, namespace
        self.used: list[str] = []
        self.trap = _Trap(self)

    @property
    def label(self) -> str:
        return f"exercise {exercise_number(self.lesson, self.exercise)} ({self.exercise})"

    def violation(self, name: str, caller: str = ""):
        """Record and raise: ``caller`` (the learner function that made the call) calls ``name``."""
        what = f"{caller}() calls the reference {name}" if caller and caller != "<module>" else \
            f"your code calls the reference {name}"
        if what not in self.used:
            self.used.append(what)
        raise ReferenceUsed(self._message(what))

    def _message(self, what: str) -> str:
        return f"{self.label}: {what}: {self.rule.instead or 'write it yourself'}"

    def end(self) -> None:
        """Take the traps away; fail if learner code hid a trap's error or changed numpy meanwhile."""
        _release()
        changed = _restore_modules()
        if self.used:
            raise ReferenceUsed(self._message(self.used[0]))
        if changed:
            raise AssertionError(f"learner code replaced {', '.join(changed[:4])} while the tests "
                                 "ran; the originals were put back and this test does not count")


def _release() -> None:
    guard, Guard.active = Guard.active, None
    if guard is not None:
        guard.trap.remove()


def reset(*_args) -> None:
    """Remove any traps left by a test cell that failed before ``end()`` (a post-cell hook)."""
    _release()


def _hook_into_ipython() -> None:
    try:
        ip = get_ipython()  # type: ignore[name-defined]  # noqa: F821 - set by IPython
    except NameError:
        ip = getattr(builtins, "get_ipython", lambda: None)()
    if ip is not None and not getattr(ip, "_course_grading_hooked", False):
        ip.events.register("post_run_cell", reset)
        ip._course_grading_hooked = True


def _load_profile() -> None:
    """Bounded property-based search: explicit cases, then generation; no shrinking, one bug."""
    from hypothesis import HealthCheck, Phase, settings

    if "course-grading" not in settings._profiles:
        settings.register_profile(
            "course-grading", derandomize=True, database=None, deadline=None, max_examples=40,
            phases=(Phase.explicit, Phase.reuse, Phase.generate), report_multiple_bugs=False,
            suppress_health_check=list(HealthCheck), print_blob=False)
    settings.load_profile("course-grading")


def begin(lesson: str, exercise: str) -> Guard:
    """Start a graded test of ``exercise``; call ``.end()`` on the result as the cell's last line."""
    _release()
    _hook_into_ipython()
    caller = sys._getframe(1)
    _TEST_FILES.add(caller.f_code.co_filename)
    _snapshot_new()
    _restore_modules()
    numpy_module = _SNAPSHOTS["numpy"][0]
    if caller.f_globals.get("np", numpy_module) is not numpy_module:
        caller.f_globals["np"] = numpy_module  # tests read `np` as numpy, whatever was bound to it
    rule = RULES[lesson][exercise]
    guard = Guard(lesson, exercise, rule, caller.f_globals)
    answer = _Answer(rule, caller.f_globals)
    todo = answer.missing_or_stub()
    if todo:
        raise NotImplementedError(f"{guard.label} is not implemented yet: write {', '.join(todo)} "
                                  "in its answer cell and run that cell")
    problems = answer.ownership_problems() + answer.restriction_problems()
    if problems:
        raise ReferenceUsed(f"{guard.label}: " + "; ".join(problems))
    _load_profile()
    Guard.active = guard
    for spec in rule.forbid:
        guard.trap.install(spec)
    return guard


def ready(lesson: str, *exercises: str) -> bool:
    """For demo cells: True when the exercises are answered; otherwise print one line, say False."""
    namespace = sys._getframe(1).f_globals
    for exercise in exercises:
        todo = _Answer(RULES[lesson][exercise], namespace).missing_or_stub()
        if todo:
            print(f"Finish exercise {exercise_number(lesson, exercise)} ({exercise}) first: "
                  f"this cell runs {', '.join(todo)}.")
            return False
    return True


def watch(array, tile: int):
    """``array`` as a view that records matrix products: for tests of blocked algorithms."""
    return _np.asarray(array).view(_Watched)._setup(tile)


class _Watched(_np.ndarray):
    """An ndarray view that refuses a product of two operands both larger than a tile."""

    _tile = 0

    def _setup(self, tile):
        self._tile = tile
        return self

    def __array_finalize__(self, obj):
        self._tile = getattr(obj, "_tile", 0)

    def _check(self, name, operands):
        shapes = [getattr(o, "shape", ()) for o in operands]
        big = [s for s in shapes if len(s) >= 2 and max(s[-2:]) > self._tile]
        if len(big) >= 2:
            raise ReferenceUsed(f"{name} of whole {shapes[0]} and {shapes[1]} matrices: multiply "
                                f"tiles of at most {self._tile} x {self._tile}, one block at a time")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if ufunc is _np.matmul:
            self._check("@", inputs)
        plain = [i.view(_np.ndarray) if isinstance(i, _Watched) else i for i in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(o.view(_np.ndarray) if isinstance(o, _Watched) else o for o in kwargs["out"])
        return getattr(ufunc, method)(*plain, **kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        if func in (_np.dot, _np.matmul, _np.einsum, _np.tensordot, _np.inner, _np.vdot, _np.linalg.multi_dot):
            self._check(func.__name__, [a for a in args if hasattr(a, "shape")])
        return super().__array_function__(func, types_, args, kwargs)

    def dot(self, other, *args):
        self._check("dot", (self, other))
        return _np.ndarray.dot(self.view(_np.ndarray), _np.asarray(other), *args)


_snapshot_new()


def flagged_imports(lesson: str, exercise: str, source: str) -> list[str]:
    """Names an answer cell imports that its exercise forbids (for the grader's feedback notes)."""
    rule = RULES.get(lesson, {}).get(exercise)
    if rule is None:
        return []
    try:
        tree = ast.parse("\n".join(l for l in source.splitlines() if not l.lstrip().startswith(("%", "!"))))
    except SyntaxError:
        return []
    exact = {s.replace(":", ".") for s in rule.forbid if not s.endswith(".*")}
    packages = tuple(s[:-2] for s in rule.forbid if s.endswith(".*"))
    banned = {n for n, _ in rule.restrict if n.isidentifier()}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if (name in exact or top in banned
                    or any(name == p or name.startswith(p + ".") for p in packages)):
                found.append(name)
    return found
