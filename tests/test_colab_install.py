"""Colab and Binder, as a learner meets them.

Colab: a fresh virtual environment holding only what Colab brings that the course relies on (a
Python kernel and nbclient: `ipykernel`, `nbclient`, hence `jupyter_client` and `nbformat`), and no
nbgrader, JupyterLab or notebook. The lessons' own setup cell then runs for real, as on Colab
(`google.colab` is put in `sys.modules` first): it git-clones the course (from a throw-away git
snapshot of this working tree, not GitHub) into `content/course` and `%pip install`s it into the
running kernel. Lesson 00's released stub and solution and lesson 02's solution run top to bottom,
and each is self-graded the way the lesson tells a Colab learner to (`!python -m autograder grade
NOTEBOOK`, from the `content` folder): the stub scores 0 with each failure's reason, the solutions
full marks.

pip gets the lock (.ci/constraints.txt) through PIP_CONSTRAINT, so the versions are the tested ones;
it uses pip's cache (warm after `make install`) and the index for anything missing. About 40-60 s
of the test is pip; the whole module takes about 70 s on a 2-core machine.

Binder: `postBuild` (repo2docker runs it after building environment.yml's environment) warms the
CPU provider's Numba cache; the test checks the file and runs it.
"""
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / ".ci" / "constraints.txt"
PUBLIC_REPO = "https://github.com/inference-engines-from-scratch/course"
# what Colab brings that self-grading needs (course.doctor.GRADING); the lock pins their versions
COLAB_PREINSTALLED = ["ipykernel", "nbclient"]
NOT_ON_COLAB = ["nbgrader", "jupyterlab", "notebook"]  # nbgrader cannot be installed there
# (lesson, which notebook, expected score: None = full marks)
RUNS = [("00_welcome", "lessons", 0.0), ("00_welcome", "solutions", None), ("02_tensors", "solutions", None)]
PIP_S, CELL_S, GRADE_S = 600, 900, 300

pytestmark = pytest.mark.slow


def _setup_cell(lesson: str, folder: str = "solutions") -> str:
    nb = json.loads((ROOT / folder / lesson / f"{lesson}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    return "".join(code[0]["source"])


def _run(cmd, *, timeout, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if out.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited with {out.returncode}:\n"
                    f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def _snapshot(dest: Path) -> None:
    """A git repository holding this working tree's files (tracked and not ignored), one commit."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, check=True, timeout=60).stdout.split(b"\0")
        files = [f.decode() for f in listed if f and (ROOT / f.decode()).is_file()]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (a release archive)
        files = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()
                 and not {".git", ".venv", "work", "__pycache__", ".pytest_cache", ".hypothesis"}
                 & set(p.relative_to(ROOT).parts) and ".egg-info" not in str(p)]
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dest / f)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
    _run([*git, "init", "-q"], cwd=dest, timeout=60)
    _run([*git, "add", "-A"], cwd=dest, timeout=120)
    _run([*git, "commit", "-q", "-m", "snapshot"], cwd=dest, timeout=120)


@pytest.fixture(scope="module")
def colab():
    """(folder with content/ and venv/, environment for the kernel and the grader)."""
    if shutil.which("git") is None:
        pytest.skip("no git on PATH: the Colab setup cell git-clones the course")
    # The grader's sandbox runs the kernel as another user: the environment must be readable by
    # it, as /usr on Colab is (pytest's tmp_path is private to its owner, mkdtemp's too until chmod).
    top = Path(tempfile.mkdtemp(prefix="course-colab-"))
    try:
        top.chmod(0o755)
        (top / "content").mkdir()
        (top / "repo").mkdir()
        _snapshot(top / "repo")
        _run([sys.executable, "-m", "venv", str(top / "venv")], timeout=300)
        py = top / "venv" / "bin" / "python"
        env = {k: v for k, v in os.environ.items()
               if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "NUMBA_CACHE_DIR")
               and not k.startswith(("JUPYTER", "PYTEST", "COV_"))}
        env.update(PATH=f"{py.parent}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(top / "venv"),
                   PIP_CONSTRAINT=str(LOCK), PIP_DISABLE_PIP_VERSION_CHECK="1",
                   JUPYTER_CONFIG_DIR=str(top / "jupyter"), JUPYTER_DATA_DIR=str(top / "jupyter" / "data"),
                   JUPYTER_RUNTIME_DIR=str(top / "jupyter" / "runtime"), IPYTHONDIR=str(top / "ipython"),
                   COURSE_PARTS_DIR=str(top / "parts"),  # lessons' course.parts.save: not into ~/.course
                   PYTHONUNBUFFERED="1")
        _run([str(py), "-m", "pip", "install", "-q", *COLAB_PREINSTALLED], env=env, timeout=PIP_S)
        yield top, env
    finally:
        shutil.rmtree(top, ignore_errors=True)


# Runs in the fresh environment: the notebook top to bottom in a kernel "on Colab" (google.colab
# imported), the setup cell pointed at the snapshot and at content/course; errors are kept as
# outputs (a learner's stub raises NotImplementedError) and counted.
_EXECUTE = r"""
import json, sys, nbformat
from nbclient import NotebookClient
src, dst, cwd, repo, clone = sys.argv[1:6]
nb = nbformat.read(src, as_version=4)
setup = nb.cells[[c.cell_type for c in nb.cells].index("code")]
setup.source = (setup.source.replace("https://github.com/inference-engines-from-scratch/course", "file://" + repo)
                .replace("/content/course", clone))
fake = nbformat.v4.new_code_cell("import sys, types\n"
                                 "sys.modules.setdefault('google.colab', types.ModuleType('google.colab'))")
nb.cells.insert(0, fake)
NotebookClient(nb, timeout=int(sys.argv[6]), kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": cwd}}).execute()
nb.cells.remove(fake)
nbformat.write(nb, dst)
errors = [f"{o.ename}: {o.evalue}" for c in nb.cells if c.cell_type == "code"
          for o in c.outputs if o.output_type == "error"]
setup_text = "".join(o.get("text", "") + "".join(o.get("data", {}).get("text/plain", ""))
                     for o in setup.outputs)
print(json.dumps({"errors": errors, "setup": setup_text}))
"""


def test_setup_cell_installs_what_colab_can():
    """Every lesson's setup cell clones the public repository into /content/course and pip-installs
    it with no extra that drags in nbgrader or JupyterLab (Colab cannot install nbgrader)."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for folder in ("solutions", "lessons"):
        for nb in sorted((ROOT / folder).glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb")):
            cell = _setup_cell(nb.parent.name, folder)
            where = f"{folder}/{nb.parent.name}"
            assert f"git clone -q --depth 1 {PUBLIC_REPO} /content/course" in cell, where
            m = re.search(r"%pip install -q -e /content/course(\[[^\]]*\])?(\s|$)", cell)
            assert m, f"{where}: the setup cell does not pip-install the clone"
            for extra in filter(None, (m[1] or "").strip("[]").split(",")):
                assert not any(d.startswith(("nbgrader", "jupyterlab", "notebook")) for d in extras[extra.strip()]), \
                    f"{where}: extra [{extra}] needs nbgrader or JupyterLab, which Colab cannot install"
            assert 'sys.path.insert(0, "/content/course")' in cell, where


def test_colab_learner_runs_and_self_grades(colab):
    top, env = colab
    py = top / "venv" / "bin" / "python"
    content, clone = top / "content", top / "content" / "course"
    script = top / "execute.py"
    script.write_text(_EXECUTE)
    problems = []
    for i, (lesson, folder, want) in enumerate(RUNS):
        name = f"{lesson}.ipynb" if folder == "lessons" else f"{lesson}_solution.ipynb"
        shutil.copy(ROOT / folder / lesson / f"{lesson}.ipynb", content / name)
        ran = _run([str(py), str(script), str(content / name), str(content / name), str(content),
                    str(top / "repo"), str(clone), str(CELL_S)], env=env, cwd=content, timeout=CELL_S + 60)
        result = json.loads(ran.stdout.strip().splitlines()[-1])
        if i == 0:  # the setup cell cloned and installed the course; Colab's missing tools stay missing
            assert (clone / ".git").is_dir() and (clone / "course" / "__init__.py").is_file(), result["setup"]
            assert "CUDA: simulator" in result["setup"] or "CUDA: gpu" in result["setup"], result["setup"]
            check = _run([str(py), "-c", "import importlib.util as u, json, sys; "
                          "print(json.dumps({m: u.find_spec(m) is not None for m in sys.argv[1:]}))",
                          "course", "kernels", "autograder", *NOT_ON_COLAB], env=env, cwd=content, timeout=120)
            found = json.loads(check.stdout)
            assert found == {"course": True, "kernels": True, "autograder": True,
                             **{m: False for m in NOT_ON_COLAB}}, found
        if want is None and result["errors"]:
            problems.append(f"{folder}/{lesson} run top to bottom: {result['errors'][:3]}")
        if want is not None and not result["errors"]:
            problems.append(f"{folder}/{lesson}: the released stub ran without an error")
        graded = _run([str(py), "-m", "autograder", "grade", name, "--lesson", lesson, "--json"],
                      env=env, cwd=content, timeout=GRADE_S)
        report = json.loads(graded.stdout.strip().splitlines()[-1])
        tests = report["tests"]
        if not tests or report["max_score"] <= 0:
            problems.append(f"{folder}/{lesson}: no graded tests in {report}")
            continue
        if want is None and report["score"] != report["max_score"]:
            failed = [f"{t['id']}: {t['message']}" for t in tests if t["score"] < t["points"]]
            problems.append(f"{folder}/{lesson}: {report['score']}/{report['max_score']}: {failed[:3]}")
        if want is not None:
            if report["score"] != want:
                problems.append(f"{folder}/{lesson}: the stub scored {report['score']}, expected {want}")
            # readable feedback: every failed test says why, naming the exercise to write
            vague = [t["id"] for t in tests if "not implemented yet" not in t["message"]]
            if vague:
                problems.append(f"{folder}/{lesson}: tests without a 'not implemented yet' reason: {vague} "
                                f"({[t['message'] for t in tests][:3]})")
    assert not problems, "\n".join(problems)


# -- Binder ---------------------------------------------------------------------------------------

def _binder_file(name: str) -> Path:
    """repo2docker reads its files from binder/ (or .binder/) when that folder exists, else the root."""
    for folder in ("binder", ".binder"):
        if (ROOT / folder).is_dir():
            return ROOT / folder / name
    return ROOT / name


def test_binder_post_build_warms_the_numba_cache():
    post, env_yml = _binder_file("postBuild"), _binder_file("environment.yml")
    assert post.is_file() and env_yml.is_file(), f"Binder reads {post} and {env_yml}"
    assert post.stat().st_mode & stat.S_IXUSR, "postBuild must be executable (repo2docker runs ./postBuild)"
    mode = subprocess.run(["git", "ls-files", "-s", str(post.relative_to(ROOT))], cwd=ROOT,
                          capture_output=True, text=True).stdout.split()
    if mode:  # in git, too, or a fresh clone has no executable bit
        assert mode[0] == "100755", f"git holds postBuild as {mode[0]}: `git update-index --chmod=+x postBuild`"
    text = post.read_text()
    assert text.startswith("#!/bin/bash") or text.startswith("#!/usr/bin/env bash")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert any(ln.startswith("set -e") for ln in lines), "postBuild must stop at the first failing command"
    assert "python -m course.providers.cpu.warm" in lines, f"postBuild does not warm the cache: {lines}"
    # the same warm-up `make install` does, after environment.yml installed the course
    assert "-m course.providers.cpu.warm" in (ROOT / "Makefile").read_text()
    assert re.search(r"^\s*-\s*-e \.\s*$", env_yml.read_text(), re.M), "environment.yml must install the course"
    # and the command works: it compiles (or, warm, loads) every job kind into Numba's on-disk cache
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = subprocess.run(["bash", str(post)], cwd=post.parent, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "compiled and cached" in out.stdout, out.stdout
    cache = Path(os.environ["NUMBA_CACHE_DIR"]) if os.environ.get("NUMBA_CACHE_DIR") else ROOT / "course"
    assert list(cache.rglob("*.nbi")), f"no Numba cache index (*.nbi) under {cache} after postBuild"
