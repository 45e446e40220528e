"""A sandbox per submission: the grading kernel runs on a private copy of the course, cut off.

``Sandbox.create(...)`` (in the grader, before the kernel starts) makes a private folder::

    SCRATCH/pkgs/{course,kernels,autograder}   a copy of the package (the kernel imports this one)
    SCRATCH/work/                              the kernel's working folder (the lesson's assets)
    SCRATCH/home/, SCRATCH/tmp/                HOME and TMPDIR
    SCRATCH/kernel.json, SCRATCH/ipc/          the kernel's connection file and sockets

and ``SandboxKernelManager`` starts the Jupyter kernel through ``python -m autograder.sandbox``,
the launcher below, which applies what the machine allows, in this order (``Report`` says which):

1. **namespaces** (Linux; as root, or as a user where unprivileged user namespaces are allowed):
   a new network namespace (no interface but a loopback that is down: nothing can be reached,
   not even this machine's own servers), a new PID namespace (the kernel is process 1: when it
   ends, everything it started ends with it; ``/proc`` shows nothing else) and a new mount
   namespace in which every file system is read-only except SCRATCH's work/home/tmp, the course
   root, the work folder and the submissions are hidden under an empty file system (the Python
   environment is put back when it lives inside one of them) and ``/dev/shm`` is private;
2. **no root**: as root, the kernel switches to an unprivileged user id of its own, so the file
   permissions, the read-only mounts and the process limit hold (root ignores the first and the
   last and could undo the second); as a user, a nested user namespace locks the mounts; before
   the switch, a child already switched checks that the user can reach the interpreter, the
   environment and the package copy, and when it cannot the kernel is not started and
   ``Report.refused`` names the folder and the fix (``_unreachable``);
3. **resource limits** (``setrlimit``): data memory, CPU seconds, processes (per user id),
   open files, file size (SIGXFSZ ignored: an oversize write fails with "File too large");
4. always, in the kernel's startup (``sandbox_startup.py``): ``socket.connect`` to any Internet
   address raises ``PermissionError`` with a message saying why; on a machine without network
   namespaces (macOS, a container that forbids them, Colab) this is the network barrier.

Why namespaces rather than ``chmod``: the grader often runs as root (containers, CI, Colab) and
root ignores file permissions; a read-only mount in a namespace the kernel cannot leave, with the
kernel no longer root, holds against root's code too.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

SPEC_ENV = "AUTOGRADER_SANDBOX"          # path of the spec file, set for the worker process
DISABLE_ENV = "AUTOGRADER_NO_SANDBOX"     # "1": run the kernel unconfined (debugging only)
NO_NAMESPACES_ENV = "AUTOGRADER_NO_NAMESPACES"  # "1": the fallback only (as on macOS or Colab)
PACKAGES = ("course", "kernels", "autograder")
PACKAGE_ROOT = Path(__file__).resolve().parent.parent

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
_MOUNT_FLAGS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}


@dataclass
class Spec:
    """What the launcher needs; written to ``SCRATCH/sandbox.json`` by the grader."""
    scratch: str
    hide: list[str]                 # folders the kernel must not see
    memory_mb: int
    cpu_seconds: int
    processes: int
    open_files: int
    file_mb: int
    uid: int                        # the unprivileged user id used when the grader is root

    @property
    def path(self) -> Path:
        return Path(self.scratch)


@dataclass
class Report:
    """What the launcher could apply, saved as ``SCRATCH/applied.json`` for notes and tests."""
    namespaces: str = "none"        # "root", "user" or "none"
    network: str = "socket guard"   # "namespace + socket guard" when the netns applied
    filesystem: str = "private copy"
    user: str = "unchanged"
    limits: dict = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    refused: str = ""               # why the kernel was not started (``_unreachable``), for the feedback

    def summary(self) -> str:
        return (f"namespaces: {self.namespaces}; network: {self.network}; files: {self.filesystem}; "
                f"user: {self.user}" + (f" ({'; '.join(self.reasons)})" if self.reasons else "")
                + ("; kernel not started (its user could not reach the Python environment)" if self.refused else ""))


# -- grader side --------------------------------------------------------------------------------

class Sandbox:
    """The private folder of one submission; ``with Sandbox.create(...) as box:``."""

    def __init__(self, spec: Spec):
        self.spec = spec

    @classmethod
    def create(cls, limits, hide: list[Path], assets: Path | None = None) -> "Sandbox":
        parent = Path(tempfile.gettempdir()) / "autograder-sandboxes"
        parent.mkdir(mode=0o711, exist_ok=True)  # hidden from every sandbox but for its own folder
        scratch = Path(tempfile.mkdtemp(prefix="ag-", dir=parent))
        for sub in ("work", "home", "tmp", "ipc"):
            (scratch / sub).mkdir()
        ignore = shutil.ignore_patterns("*.nbi", "*.nbc", ".ipynb_checkpoints", "tests")
        for name in PACKAGES:
            shutil.copytree(PACKAGE_ROOT / name, scratch / "pkgs" / name, ignore=ignore)
        _seed_numba_cache(scratch)
        if assets is not None and assets.is_dir():
            skip = shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__", "*.pyc")
            shutil.copytree(assets, scratch / "work", ignore=skip, dirs_exist_ok=True)
        hidden = sorted({str(Path(h).resolve()) for h in [*hide, PACKAGE_ROOT, parent] if Path(h).exists()})
        spec = Spec(str(scratch), hidden, limits.memory_mb, limits.cpu_limit, limits.processes,
                    limits.open_files, limits.file_mb, uid=200_000 + secrets.randbelow(1_000_000_000))
        (scratch / "sandbox.json").write_text(json.dumps(asdict(spec)))
        return cls(spec)

    @property
    def work(self) -> Path:
        return self.spec.path / "work"

    @property
    def spec_file(self) -> Path:
        return self.spec.path / "sandbox.json"

    def report(self) -> Report | None:
        try:
            return Report(**json.loads((self.spec.path / "applied.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def refused(self) -> str:
        """Why the launcher did not start the kernel (its user could not reach the Python
        environment or the package copy), or ""; remembered for ``known_refusal``."""
        global _REFUSED
        report = self.report()
        if report is not None and report.refused:
            _REFUSED = report.refused
        return report.refused if report is not None else ""

    def close(self) -> None:
        shutil.rmtree(self.spec.path, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_REFUSED = ""  # the first refusal seen by this process: the environment, not a submission, caused it


def known_refusal() -> str:
    """A refusal already seen in this grading process: the same environment refuses every
    submission, so the callers report it without starting another kernel (checked once per run)."""
    return _REFUSED


def numba_cache_subpath(source_dir: Path) -> str:
    """The folder, inside ``NUMBA_CACHE_DIR``, where numba keeps the compiled functions of the
    sources in ``source_dir``: the folder's name and the SHA-1 of its absolute path (numba's
    ``_CacheLocator.get_suitable_cache_subpath``; a test keeps the two in step). Written out here
    so the grader need not import numba."""
    path = os.path.abspath(source_dir)
    return f"{os.path.basename(path)}_{hashlib.sha1(path.encode()).hexdigest()}"


def _seed_numba_cache(scratch: Path) -> None:
    """Put a private copy of the course's compiled Numba loops (``make install`` warms them,
    beside the sources) where the kernel's numba looks for them: ``NUMBA_CACHE_DIR`` is the
    sandbox's own ``tmp/numba``, which would otherwise start empty and make a lesson that runs the
    CPU provider compile it again (about 30 s). A submission can change only its own copy; the
    provider's source stamp (course/providers/cpu/cache.py) still drops a copy that is stale."""
    for cached in sorted((PACKAGE_ROOT / "course").rglob("__pycache__")):
        files = [f for f in cached.iterdir() if f.suffix in (".nbi", ".nbc") or f.name.endswith(".sources")]
        if not files:
            continue
        copy_of_sources = scratch / "pkgs" / cached.parent.relative_to(PACKAGE_ROOT)
        target = scratch / "tmp" / "numba" / numba_cache_subpath(copy_of_sources)
        target.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy2(f, target / f.name)


def current_spec() -> Spec | None:
    """The spec the worker was started with, or None (no sandbox: a plain kernel)."""
    path = os.environ.get(SPEC_ENV)
    if not path or os.environ.get(DISABLE_ENV) == "1":
        return None
    return Spec(**json.loads(Path(path).read_text()))


def exit_reason(spec: Spec) -> str:
    """Why the sandboxed kernel died, when the launcher could tell (a limit's signal)."""
    try:
        return (spec.path / "exit.txt").read_text().strip()
    except OSError:
        return ""


def make_kernel_manager_class():
    from jupyter_client import AsyncKernelManager

    class SandboxKernelManager(AsyncKernelManager):
        """A kernel manager whose kernel starts inside the sandbox (IPC sockets, launcher)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            spec = current_spec()
            self._spec = spec
            if spec is not None:
                # Unix sockets in SCRATCH: reachable across the network namespace (TCP is not)
                self.transport = "ipc"
                self.ip = str(spec.path / "ipc" / "k")
                self.connection_file = str(spec.path / "kernel.json")

        def format_kernel_cmd(self, extra_arguments=None):
            cmd = super().format_kernel_cmd(extra_arguments)
            if self._spec is None:
                return cmd
            return [sys.executable, "-m", "autograder.sandbox", str(self._spec.path / "sandbox.json"),
                    "--", *cmd]

    return SandboxKernelManager


# -- launcher side ------------------------------------------------------------------------------

_libc = None


def _libc_call(name: str, *args) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(_libc, name)
    if fn(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def _mount(src, target, fstype, flags, data=None) -> None:
    enc = lambda s: s.encode() if isinstance(s, str) else s  # noqa: E731
    _libc_call("mount", enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))


def _mounts() -> list[tuple[str, int]]:
    """(mount point, flags to keep) of every mount, parents before children."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        parts = line.split()
        point = parts[4].encode().decode("unicode_escape")
        keep = 0
        for opt in parts[5].split(","):
            keep |= _MOUNT_FLAGS.get(opt, 0)
        out.append((point, keep))
    return out


def _minimal(paths: set[str]) -> list[str]:
    """The paths not inside another one of them."""
    return sorted(p for p in paths if not any(q != p and _under(p, q) for q in paths))


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def _enter_pid_namespace(report: Report) -> bool:
    """Stage 1, in the launcher: a new PID namespace for its next child (and, when not root, a
    user namespace to hold the rights the next stage needs). The launcher itself stays in the
    grader's mount and network namespaces, so it can still write the scratch folder."""
    if not sys.platform.startswith("linux"):
        report.reasons.append("no namespaces on this system")
        return False
    if os.environ.get(NO_NAMESPACES_ENV) == "1":
        report.reasons.append(f"namespaces switched off ({NO_NAMESPACES_ENV}=1)")
        return False
    uid, gid = os.getuid(), os.getgid()
    try:
        if os.geteuid() == 0:
            _libc_call("unshare", CLONE_NEWPID)
            report.namespaces = "root"
        else:
            _libc_call("unshare", CLONE_NEWUSER | CLONE_NEWPID)
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"0 {uid} 1")
            _write("/proc/self/gid_map", f"0 {gid} 1")
            report.namespaces = "user"
    except OSError as e:
        report.reasons.append(f"namespaces not permitted here ({e.strerror})")
        return False
    return True


def _enter_mount_and_network_namespaces(report: Report) -> None:
    """Stage 2, in the child (process 1 of the new PID namespace)."""
    _libc_call("unshare", CLONE_NEWNS | CLONE_NEWNET)
    report.network = "namespace + socket guard"


def _confine_files(spec: Spec, report: Report) -> None:
    """In the new mount namespace: everything read-only but the scratch's writable folders,
    the course and the work folders hidden, the Python environment kept readable."""
    scratch = str(spec.path)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    env_paths = {sys.prefix, sys.base_prefix, os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
    keep = _minimal({*env_paths, str(Path(sys.executable).resolve().parent), scratch})  # links resolved too
    for folder in _minimal(set(spec.hide) | {str(Path.home())}):
        if any(_under(folder, p) for p in keep):
            report.reasons.append(f"{folder} is inside {scratch} or the Python environment: not hidden")
            continue
        inside = [p for p in keep if _under(p, folder)]
        # a handle on the folder as it was, to bind the kept paths back from once it is covered
        handle = os.open(folder, os.O_PATH | os.O_DIRECTORY)
        _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
        for p in inside:
            rel = os.path.relpath(p, folder)
            os.makedirs(os.path.join(folder, rel), exist_ok=True)
            _mount(f"/proc/self/fd/{handle}/{rel}", os.path.join(folder, rel), None, MS_BIND | MS_REC)
        os.close(handle)
    for sub in ("work", "home", "tmp", "ipc"):
        p = os.path.join(scratch, sub)
        _mount(p, p, None, MS_BIND)
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=256m,mode=1777")
    writable = {os.path.join(scratch, s) for s in ("work", "home", "tmp", "ipc")} | {"/dev/shm"}
    for point, keep_flags in _mounts():
        if point in writable or any(_under(point, d) for d in ("/proc", "/sys", "/dev")):
            continue
        try:
            _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep_flags)
        except OSError as e:
            report.reasons.append(f"{point} stays writable ({e.strerror})")
    report.filesystem = "read-only except the scratch folder; course root and work folders hidden"


def _prepare_for_uid(spec: Spec) -> None:
    """As root, before the mounts: hand the writable folders and the connection file to the
    sandbox's own user id (the package copy stays root's, so that user cannot change it)."""
    for sub in ("work", "home", "tmp", "ipc"):
        for dirpath, dirs, files in os.walk(spec.path / sub):
            for name in [dirpath, *[os.path.join(dirpath, f) for f in dirs + files]]:
                os.lchown(name, spec.uid, spec.uid)
        os.chmod(spec.path / sub, 0o700)  # other sandboxes' users cannot look in
    os.chmod(spec.path, 0o755)
    os.chown(spec.path / "kernel.json", spec.uid, spec.uid)


def _others_can_run_python() -> bool:
    """Whether a user other than root can reach the interpreter and its libraries (a Python
    installed under /root cannot be: without a mount namespace to expose it, stay root)."""
    for target in {Path(sys.executable).resolve(), Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}:
        for folder in [*reversed(target.parents), target]:
            if folder.is_dir() and not os.stat(folder).st_mode & 0o001:
                return False
    return True


def _become_user(spec: Spec) -> None:
    os.setgroups([])
    os.setgid(spec.uid)
    os.setuid(spec.uid)


REFUSED_EXIT = 78  # EX_CONFIG: the launcher did not start the kernel (``Report.refused`` says why)


def _kernel_needs(spec: Spec, cmd: list[str]) -> list[tuple[str, str, str, int]]:
    """(what, path, path with links resolved, access) for what the kernel opens as the sandbox's
    user: the interpreter, the Python environment and the package copy. Resolved here, as root."""
    import sysconfig

    exe = shutil.which(cmd[0]) or cmd[0]
    needs = [("the kernel's Python interpreter", exe, os.X_OK)]
    paths = sysconfig.get_paths()
    for folder in dict.fromkeys([sys.prefix, sys.base_prefix, *(paths[k] for k in ("stdlib", "purelib", "platlib"))]):
        needs.append(("the Python environment", folder, os.X_OK))
    needs += [("the sandbox's copy of the course package", str(spec.path / "pkgs" / name / "__init__.py"), os.R_OK)
              for name in PACKAGES]
    needs.append(("the sandbox's working folder", str(spec.path / "work"), os.X_OK))
    return [(what, os.path.abspath(p), os.path.realpath(p), mode) for what, p, mode in needs if os.path.exists(p)]


def _first_blocked(path: str, real: str) -> str | None:
    """The first folder on the way to ``path`` that this process cannot enter: along the path as
    written up to its first link, then along the resolved path (a link's target has its own way)."""
    for way, stop_at_links in ((path, True), (real, False)):
        for folder in [*reversed(Path(way).parents)]:
            if stop_at_links and os.path.islink(folder):
                break
            if not os.access(folder, os.X_OK):
                return str(folder)
    return None


def _describe(path: str) -> str:
    import pwd
    import stat

    try:
        st = os.stat(path)
    except OSError as e:
        return e.strerror
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = f"uid {st.st_uid}"
    return f"mode {stat.S_IMODE(st.st_mode):04o} {stat.filemode(st.st_mode)}, owner {owner}"


def _reach_problem(needs: list[tuple[str, str, str, int]]) -> str:
    """Run as the sandbox's user: a plain-words message for the first need it cannot reach, or ""."""
    for what, path, real, mode in needs:
        folder = _first_blocked(path, real)
        if folder is not None:
            return (f"the grading kernel was not started: the sandbox runs it as an unprivileged user "
                    f"of its own, and that user cannot enter the folder {folder} ({_describe(folder)}: "
                    f"other users may not pass through it), which holds {what} ({path}). To fix it, "
                    f"let other users pass through the folder with `chmod o+x {folder}` (they still "
                    f"cannot list it), or put the Python environment in a shared location such as "
                    f"/opt; {DISABLE_ENV}=1 grades without the sandbox, and so without the switch to "
                    f"another user, for debugging only.")
        if not os.path.exists(real):
            return (f"the grading kernel was not started: {what} ({path}, that is {real}) is not "
                    f"visible inside the sandbox, whose mounts hide the course root, the work folders "
                    f"and the grader's home folder. Put the Python environment elsewhere, e.g. in /opt.")
        if not os.access(real, mode):
            verb = "run" if mode == os.X_OK and os.path.isfile(real) else "read" if mode == os.R_OK else "enter"
            return (f"the grading kernel was not started: the sandbox runs it as an unprivileged user "
                    f"of its own, and that user cannot {verb} {real} ({_describe(real)}), "
                    f"{what}. To fix it, give other users access with `chmod o+rX {real}`, or put "
                    f"the Python environment in a shared location such as /opt.")
    return ""


def _unreachable(spec: Spec, needs: list[tuple[str, str, str, int]]) -> str:
    """Whether the sandbox's user can reach what the kernel needs, asked of that user itself (a
    forked child that drops to its uid): after the mounts, so a folder covered and put back by
    ``_confine_files`` counts as it will be seen, and file ACLs count too. ``needs`` is listed
    before the mounts, so what they hide counts as missing."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(read_end)
            _become_user(spec)
            os.write(write_end, _reach_problem(needs).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        text = fh.read().decode(errors="replace")
    os.waitpid(child, 0)
    return text


def _lock_mounts(report: Report) -> None:
    """Not root, in a user namespace: a nested user namespace locks the mounts made above (they
    cannot be undone from inside) and the kernel holds no capabilities once it is exec'd."""
    try:
        _libc_call("unshare", CLONE_NEWUSER | CLONE_NEWNS)
        real = os.getuid()
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{real} 0 1")
        _write("/proc/self/gid_map", f"{os.getgid()} 0 1")
        report.user = "the caller's user id, in a nested user namespace (mounts locked)"
    except OSError as e:
        report.reasons.append(f"mounts not locked ({e.strerror})")


def _user_tasks() -> int:
    uid, n = os.getuid(), 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    n += len(os.listdir(entry / "task"))
            except OSError:
                continue
    return n


def _set_limits(spec: Spec, report: Report, nproc: int) -> None:
    import resource

    mb = 1024 * 1024
    wanted = {
        "RLIMIT_DATA": spec.memory_mb * mb,       # private writable memory (not GPU reservations)
        "RLIMIT_CPU": spec.cpu_seconds,
        "RLIMIT_NOFILE": spec.open_files,
        "RLIMIT_FSIZE": spec.file_mb * mb,
        "RLIMIT_CORE": 0,
    }
    # counted per user id: the sandbox's own uid when the grader is root (root ignores it)
    wanted["RLIMIT_NPROC"] = nproc
    for name, value in wanted.items():
        res = getattr(resource, name, None)
        if res is None or value <= 0:
            continue
        soft, hard = resource.getrlimit(res)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        new_hard = value + 5 if name == "RLIMIT_CPU" and hard == resource.RLIM_INFINITY else value
        try:
            resource.setrlimit(res, (value, new_hard))
            report.limits[name.removeprefix("RLIMIT_").lower()] = value
        except (ValueError, OSError) as e:
            report.reasons.append(f"{name} not set ({e})")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversize write fails instead of killing


def _kernel_env(spec: Spec, report: Report) -> dict:
    env = dict(os.environ)
    env.pop(SPEC_ENV, None)
    scratch = spec.path
    env.update(HOME=str(scratch / "home"), TMPDIR=str(scratch / "tmp"), USER="learner",
               LOGNAME="learner", PYTHONPATH=str(scratch / "pkgs"),
               NUMBA_CACHE_DIR=str(scratch / "tmp" / "numba"),
               MPLCONFIGDIR=str(scratch / "home" / ".matplotlib"),
               IPYTHONDIR=str(scratch / "home" / ".ipython"),
               AUTOGRADER_SANDBOX_APPLIED=report.summary())
    env.pop("PYTHONSTARTUP", None)
    return env


_SIGNALS = {signal.SIGXCPU: "it used up the sandbox's CPU time ({cpu} s)",
            signal.SIGKILL: "it was killed (out of memory, or stopped by the grader)",
            signal.SIGSEGV: "it crashed (segmentation fault)"}


def launch(spec_path: str, cmd: list[str]) -> int:
    spec = Spec(**json.loads(Path(spec_path).read_text()))
    report = Report()
    as_root = os.geteuid() == 0
    needs = _kernel_needs(spec, cmd) if as_root else []
    namespaced = _enter_pid_namespace(report)
    if as_root and not namespaced and not _others_can_run_python():
        as_root = False  # keep root: another user could not even start the interpreter here
        report.reasons.append("the Python installation is readable by root only: the kernel stays root")
    own_tasks = 0 if as_root or not Path("/proc").is_dir() else _user_tasks()
    pipe = None
    if namespaced:
        read_end, pipe = os.pipe()  # the child's report, closed by its exec
        child = os.fork()  # the first child after unshare(CLONE_NEWPID) is process 1 of the ns
        if child:
            os.close(pipe)
            return _wait_as_parent(spec, child, read_end)
        os.close(read_end)
        _libc_call("prctl", PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if as_root:
        _prepare_for_uid(spec)
    if namespaced:
        _enter_mount_and_network_namespaces(report)
        _confine_files(spec, report)
    _set_limits(spec, report, nproc=spec.processes + own_tasks)
    env = _kernel_env(spec, report)
    if as_root:
        report.user = f"uid {spec.uid} of its own (not root)"
        # Its user cannot reach the interpreter, the environment or the package copy: refuse
        # rather than keep root. Kept root, the kernel could undo the mounts (read the hidden tests
        # and solutions, write the package), ptrace the grader and forge grades: a class would be
        # graded under weaker rules without anyone noticing, while a refusal costs one rerun
        # after a chmod, and its message (to the feedback, the CSV and the console, like a crash)
        # says which folder. (Without namespaces, a Python only root can run keeps the kernel root
        # above, as before: there root's kernel sees what the grader sees anyway.)
        report.refused = _unreachable(spec, needs)
    elif namespaced:
        _lock_mounts(report)
    _send_report(spec, report, pipe)
    if report.refused:
        print(f"autograder sandbox: {report.refused}", file=sys.stderr)
        return REFUSED_EXIT
    if as_root:
        _become_user(spec)
    os.chdir(spec.path / "work")
    os.execvpe(cmd[0], cmd, env)
    return 127  # not reached


def _send_report(spec: Spec, report: Report, pipe: int | None) -> None:
    """To the parent outside the namespaces (which writes it), or straight to ``applied.json``."""
    text = json.dumps(asdict(report))
    if pipe is not None:
        os.write(pipe, text.encode())
    else:
        (spec.path / "applied.json").write_text(text)


def _wait_as_parent(spec: Spec, child: int, report_pipe: int) -> int:
    """The launcher outside the PID namespace: pass signals on, wait, record why the kernel ended."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the kernel gets SIGINT itself (process group)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: os.kill(child, s))
    with os.fdopen(report_pipe, "rb") as fh:
        text = fh.read()
    try:
        if text:
            (spec.path / "applied.json").write_bytes(text)
    except OSError:
        pass
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            return 1
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        why = _SIGNALS.get(sig, f"it was stopped by signal {sig}").format(cpu=spec.cpu_seconds)
        try:
            (spec.path / "exit.txt").write_text(why)
        except OSError:
            pass
        return 128 + sig
    return os.WEXITSTATUS(status)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m autograder.sandbox SPEC.json -- KERNEL COMMAND...", file=sys.stderr)
        return 2
    return launch(argv[0], argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
