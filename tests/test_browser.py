"""A learner's first session, in a real browser: JupyterLab in headless Chromium.

The server starts the way `make lab` starts it (the learner config folder that hides nbgrader's
instructor tools), on copies of the SOLUTION notebooks of lesson 00, a kernel lesson with two
widgets (05: the tile-size explorer and the bank-conflict explorer) and lesson 09 (the memory plan's
step slider). Each notebook is opened and run with Run > Run All Cells; then every code cell must
have an execution count, no output may be an error (in the page, and in the notebook saved through
the UI), every matplotlib figure must render as a PNG image of non-zero size, and every widget must
render and answer: its first slider moved one step with the keyboard changes the slider's readout
and the kernel redraws the widget's text or picture.

Chromium is Debian's `chromium` driven by Playwright (no browser download: `executable_path`).
Without it the test skips, unless COURSE_REQUIRE_BROWSER=1 (set by .ci/run), where it fails.
Screenshots of each notebook after the run go to work/browser/ (git-ignored); a failure names them.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LEARNER_LAB = ROOT / "autograder" / "learner_lab"  # what `make lab` puts on JUPYTER_CONFIG_PATH
SHOTS = ROOT / "work" / "browser"
REQUIRE = os.environ.get("COURSE_REQUIRE_BROWSER", "") not in ("", "0")

# lesson -> (interactive widgets, figures outside widgets): the least number the solution shows
# after Run All. Every slider widget found is moved and must answer, not only the first.
LESSONS = {"00_welcome": (0, 0), "05_shared_memory": (2, 4), "09_memory_planning": (1, 4)}
# (05 shows 5 figures and 09 shows 5 today; every figure the saved notebook holds must render)

SERVER_START_S = 90    # a cold JupyterLab on a busy 2-core machine starts in ~5 s
OPEN_S = 90            # notebook rendered and its kernel idle
RUN_ALL_S = 300        # all three notebooks, run side by side (about 30-60 s when the machine is free)

pytestmark = pytest.mark.slow


def _unavailable(reason: str):
    if REQUIRE:
        pytest.fail(f"{reason}; COURSE_REQUIRE_BROWSER is set, so the browser test may not skip")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium():
    """Playwright's Chromium handle on Debian's `chromium`, closed at the end of the module."""
    path = shutil.which("chromium")
    if path is None:
        _unavailable("no `chromium` on PATH (Debian/Ubuntu: apt-get install chromium; .ci/run does it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing (pip install -e '.[dev]')")
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=path, headless=True, timeout=60_000)
    except Exception as exc:  # noqa: BLE001 - a browser that cannot start is "unavailable"
        pw.stop()
        _unavailable(f"{path} does not start under Playwright: {exc}")
    yield browser
    try:
        browser.close()
    finally:
        pw.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on copies of the solution notebooks: (base url, token, root folder)."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"
    for lesson in LESSONS:
        shutil.copytree(ROOT / "solutions" / lesson, root / lesson,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        nb_path = root / lesson / f"{lesson}.ipynb"
        nb = json.loads(nb_path.read_text())
        for cell in nb["cells"]:  # a clean slate: any count or output after Run All is from this run
            if cell["cell_type"] == "code":
                cell["execution_count"], cell["outputs"] = None, []
        nb_path.write_text(json.dumps(nb))
    settings = tmp / "settings"
    # every cell in the DOM (no virtual scrolling), no news or update checks from a machine offline
    _write_json(settings / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings",
                {"windowingMode": "none"})
    _write_json(settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings",
                {"fetchNews": "false", "checkForUpdates": False})
    env = dict(os.environ)
    env.update(
        NUMBA_ENABLE_CUDASIM="1",                  # the lessons on the simulator, as in CI
        COURSE_PARTS_DIR=str(tmp / "parts"),       # the lessons' course.parts.save: not into ~/.course
        JUPYTER_CONFIG_PATH=os.pathsep.join(filter(None, [str(LEARNER_LAB), env.get("JUPYTER_CONFIG_PATH")])),
        JUPYTER_CONFIG_DIR=str(tmp / "config"),    # nothing read from or written to ~/.jupyter
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        IPYTHONDIR=str(tmp / "ipython"),
        PYTHONUNBUFFERED="1",
    )
    port, token = _free_port(), os.urandom(16).hex()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={tmp / 'workspaces'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # as the Makefile does: containers and CI images run as root
    log = tmp / "jupyterlab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{_tail(log)}")
            try:
                req = urllib.request.Request(f"{base}/api/status", headers={"Authorization": f"token {token}"})
                with urllib.request.urlopen(req, timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer within {SERVER_START_S} s:\n{_tail(log)}")
                time.sleep(0.3)
        yield base, token, root, log
    finally:
        _stop(proc)


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM: the server shuts its kernels down; anything left of its process group is killed."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # kernels of a server that did not stop them
    except (ProcessLookupError, PermissionError):
        pass


# In-page probes. Error outputs and stderr streams both render as
# `.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]`: a warning is plain text,
# an error is IPython's traceback (ANSI-coloured spans, "Traceback (most recent call last)").
_PANEL_JS = """Array.from(document.querySelectorAll('.jp-NotebookPanel'))
  .find(p => !p.classList.contains('lm-mod-hidden')) || document"""

_STATE_JS = """() => {
  const panel = %s;
  const cells = Array.from(panel.querySelectorAll('.jp-Notebook .jp-CodeCell'));
  const prompts = cells.map(c => (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '');
  const ind = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  return {prompts, status: ind ? ind.getAttribute('data-status') : null};
}""" % _PANEL_JS

_PROBLEMS_JS = """() => {
  const panel = %s;
  const errors = [];
  panel.querySelectorAll('.jp-Notebook .jp-CodeCell').forEach((cell, i) => {
    cell.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
      .forEach(out => {
        const text = out.textContent || '';
        const traceback = out.querySelector('.ansi-red-fg, .ansi-red-intense-fg') !== null
          || /Traceback \\(most recent call last\\)/.test(text) || /^\\s*Cell In\\[\\d+\\]/m.test(text);
        if (traceback) errors.push(`code cell ${i + 1}: ` + text.trim().split('\\n').slice(-3).join(' | '));
      });
    cell.querySelectorAll('.jp-OutputArea-output').forEach(out => {
      if (/Error displaying widget|Failed to load model class|Loading widget\\.\\.\\./.test(out.textContent || ''))
        errors.push(`code cell ${i + 1}: a widget did not render: ` + out.textContent.trim().slice(0, 200));
    });
  });
  const widgets = Array.from(panel.querySelectorAll('.jp-OutputArea-output .jupyter-widgets'))
    .filter(w => w.getBoundingClientRect().width > 0 && /(^| )widget-/.test(w.className));
  return {errors, widgets: widgets.length};
}""" % _PANEL_JS


def _open(browser, base, token, lesson):
    """The notebook alone in its own browser context and JupyterLab workspace (no shared tabs)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(OPEN_S * 1000)
    page.goto(f"{base}/lab/workspaces/{lesson}/tree/{lesson}/{lesson}.ipynb?reset&token={token}")
    page.wait_for_selector(".jp-Notebook .jp-CodeCell")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    return page


def _run_all(page):
    """Run > Run All Cells, through the menu bar as a learner would."""
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()


def _finished(state, started: bool) -> bool:
    prompts = state["prompts"]
    busy = any("*" in p for p in prompts)
    if busy or state["status"] != "idle":
        return False
    # the copies start without counts, so a count means the run began; it ended with the last cell
    # or stopped at an error (the cells after it are no longer queued)
    return started or any(ch.isdigit() for p in prompts for ch in p)


def _saved_errors(path: Path) -> tuple[list, list]:
    """Error outputs and code cells without an execution count in the notebook as saved."""
    nb = json.loads(path.read_text())
    errors, unrun = [], []
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(code, 1):
        if cell.get("execution_count") is None:
            unrun.append(i)
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append(f"code cell {i}: {out.get('ename')}: {out.get('evalue')}")
    return errors, unrun


def _menu_problems(page) -> list:
    """What a learner must not see in `make lab`: nbgrader's instructor menus and panels."""
    menus = page.eval_on_selector_all(".lm-MenuBar-item", "els => els.map(e => e.textContent.trim())")
    tabs = page.eval_on_selector_all(".lm-TabBar-tab", "els => els.map(e => (e.getAttribute('title') || '') + ' ' + e.textContent)")
    problems = [f"menu bar has {m!r}" for m in menus if m.lower() == "nbgrader"]
    problems += [f"side bar tab {t.strip()!r}" for t in tabs
                 if any(w in t for w in ("Create Assignment", "Formgrader", "Assignment List", "Courses"))]
    body = page.inner_text("body")
    problems += [f"page says {w!r}" for w in ("Error fetching courses",) if w in body]
    return problems


def test_make_lab_uses_the_learner_config():
    """`make lab` starts JupyterLab with the config folder this test uses (no make: skipped)."""
    if shutil.which("make") is None:
        pytest.skip("no make on PATH")
    out = subprocess.run(["make", "-n", "-s", "lab"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items()
                              if k not in ("JUPYTER_CONFIG_PATH", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")})
    line = next((ln for ln in out.stdout.splitlines() if "jupyter lab" in ln), "")
    assert f'JUPYTER_CONFIG_PATH="{LEARNER_LAB}"' in line, f"`make lab` runs {line!r}"
    page_config = json.loads((LEARNER_LAB / "labconfig" / "page_config.json").read_text())
    assert page_config["disabledExtensions"].get("@jupyter/nbgrader:formgrader") is True


def test_lessons_run_clean_in_jupyterlab(chromium, lab):  # no browser: no server started
    base, token, root, log = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    pages, problems, shots = {}, [], []
    try:
        for lesson in LESSONS:
            pages[lesson] = _open(chromium, base, token, lesson)
        problems += [f"make lab: {p}" for p in _menu_problems(pages["00_welcome"])]
        for page in pages.values():  # side by side: the kernels run while we poll
            _run_all(page)
        states = _wait_all(pages)
        for lesson, page in pages.items():
            problems += [f"{lesson}: {p}" for p in _check(page, states[lesson], *LESSONS[lesson],
                                                          root / lesson / f"{lesson}.ipynb")]
        saved = sorted(p.name for p in (root.parent / "parts").glob("*.pkl"))  # COURSE_PARTS_DIR
        if "09_memory_planning" in LESSONS and "09_memory_planning.pkl" not in saved:
            problems.append(f"lesson 09's plug-in cell saved no parts into COURSE_PARTS_DIR (there: {saved})")
    except Exception as exc:  # noqa: BLE001 - a timeout in the page: report it with the screenshots
        problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        for lesson, page in pages.items():
            shot = SHOTS / f"{lesson}.png"
            try:
                _focus_for_screenshot(page)
                page.screenshot(path=str(shot))
                shots.append(str(shot))
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{lesson}: no screenshot ({exc})")
            page.context.close()
    assert not problems, ("\n".join(problems) + "\nscreenshots: " + ", ".join(shots)
                          + f"\njupyter lab log (tail):\n{_tail(log, 15)}")


def _wait_all(pages) -> dict:
    """Poll every page until its kernel is idle and no cell is queued; {lesson: last state}."""
    started = {lesson: False for lesson in pages}
    states, done = {}, set()
    deadline = time.monotonic() + RUN_ALL_S
    while len(done) < len(pages) and time.monotonic() < deadline:
        for lesson, page in pages.items():
            if lesson in done:
                continue
            states[lesson] = state = page.evaluate(_STATE_JS)
            started[lesson] |= any("*" in p for p in state["prompts"])
            if _finished(state, started[lesson]):
                done.add(lesson)
        time.sleep(0.5)
    for lesson in pages:
        states[lesson]["timed_out"] = lesson not in done
    return states


def _check(page, state, want_widgets: int, want_figures: int, path: Path) -> list:
    problems = []
    if state["timed_out"]:
        problems.append(f"still running after {RUN_ALL_S} s (kernel {state['status']})")
    unrun = [i for i, p in enumerate(state["prompts"], 1) if not any(ch.isdigit() for ch in p)]
    if unrun:
        problems.append(f"code cells without an execution count: {unrun[:10]}")
    if want_widgets:  # widget views render a moment after their output arrives
        try:
            page.wait_for_function(
                "n => document.querySelectorAll('.jp-OutputArea-output .jupyter-widgets').length >= n",
                arg=want_widgets, timeout=30_000)
        except Exception:  # noqa: BLE001 - counted below
            pass
    found = page.evaluate(_PROBLEMS_JS)
    problems += [f"error output in {e}" for e in found["errors"]]
    if found["widgets"] < want_widgets:
        problems.append(f"{found['widgets']} rendered ipywidgets, expected at least {want_widgets}")
    elif want_widgets:
        problems += _widget_answers(page, want_widgets)
    figures = _figures(page)
    if figures["broken"]:
        problems.append(f"figures that did not render (no PNG, or zero size): {figures['broken'][:5]}")
    if figures["widget"] < want_widgets:  # each explorer draws a picture in its Output
        problems.append(f"{figures['widget']} rendered figures inside widgets, expected at least {want_widgets}")
    if figures["cells"] < want_figures:
        problems.append(f"{figures['cells']} rendered figures outside widgets, expected at least {want_figures}")
    # File > Save (Ctrl+S) as a learner would, then read the notebook JupyterLab wrote
    before = path.stat().st_mtime_ns
    page.keyboard.press("Control+s")
    t0 = time.monotonic()
    while path.stat().st_mtime_ns == before and time.monotonic() - t0 < 30:
        time.sleep(0.2)
    if path.stat().st_mtime_ns == before:
        problems.append("Ctrl+S did not save the notebook")
    else:
        errors, never_ran = _saved_errors(path)
        problems += [f"saved notebook has an error output in {e}" for e in errors]
        if never_ran and not unrun:
            problems.append(f"saved notebook has code cells without a count: {never_ran[:10]}")
        saved_pngs = _saved_pngs(path)
        if saved_pngs != figures["cells"]:
            problems.append(f"the saved notebook has {saved_pngs} PNG figures, the page renders {figures['cells']}")
    return problems


_FIGURES_JS = """() => {
  const panel = %s;
  const imgs = Array.from(panel.querySelectorAll('.jp-Notebook .jp-OutputArea-output img'));
  const broken = [], widget = [], cells = [];
  imgs.forEach((img, i) => {
    const r = img.getBoundingClientRect();
    const src = img.getAttribute('src') || '';
    const ok = /^data:image\\/png;base64,./.test(src) && img.complete && img.naturalWidth > 0
      && img.naturalHeight > 0 && r.width > 0 && r.height > 0;
    if (!ok) broken.push(`image ${i + 1} (${src.slice(0, 30)}, ${img.naturalWidth}x${img.naturalHeight})`);
    else (img.closest('.jupyter-widgets') ? widget : cells).push(i);
  });
  return {broken, widget: widget.length, cells: cells.length};
}""" % _PANEL_JS


def _figures(page) -> dict:
    """Rendered matplotlib figures: {'broken': [...], 'widget': n, 'cells': n} (images inside a
    widget's Output are counted apart from the cells' own figures)."""
    try:  # images decode a moment after their output arrives
        page.wait_for_function("""() => Array.from(document.querySelectorAll('.jp-OutputArea-output img'))
                                    .every(i => i.complete)""", timeout=15_000)
    except Exception:  # noqa: BLE001 - reported as broken below
        pass
    return page.evaluate(_FIGURES_JS)


def _saved_pngs(path: Path) -> int:
    """image/png outputs of the code cells in the notebook as saved (widget Outputs are not saved)."""
    nb = json.loads(path.read_text())
    return sum(1 for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
               if "image/png" in o.get("data", {}))


def _widget_answers(page, want: int) -> list:
    """Every widget with a slider: move the slider one step with the keyboard; its readout must
    change and the kernel must redraw the widget's Output and HTML parts (the picture, the text).
    At least ``want`` distinct widgets must answer."""
    widgets = page.locator(".jp-OutputArea-output:has(.jupyter-widgets .widget-slider)")
    n = widgets.count()
    problems, answered = [], 0
    for k in range(n):
        widget = widgets.nth(k)
        slider = widget.locator(".widget-slider").first
        readout = slider.locator(".widget-readout")
        drawn = widget.locator(".widget-output, .widget-html")
        before = readout.inner_text()
        drawn_before = [drawn.nth(i).inner_html() for i in range(drawn.count())]
        slider.locator(".noUi-handle").first.focus()
        page.keyboard.press("ArrowRight")
        t0, moved, redrawn = time.monotonic(), False, False
        while time.monotonic() - t0 < 30 and not (moved and redrawn):
            moved = readout.inner_text() != before
            redrawn = not drawn_before or all(drawn.nth(i).inner_html() != html
                                              for i, html in enumerate(drawn_before))
            time.sleep(0.3)
        label = f"widget {k + 1} ({slider.inner_text().strip().splitlines()[0] if slider.inner_text().strip() else 'slider'})"
        if not moved:
            problems.append(f"{label}: the slider did not move with the arrow key")
        elif not redrawn:
            problems.append(f"{label}: the slider moved but the kernel did not redraw the widget's output")
        else:
            answered += 1
    if answered < want and not problems:
        problems.append(f"{answered} of {n} slider widgets answered, expected at least {want}")
    return problems


def _focus_for_screenshot(page) -> None:
    """Scroll to what a reader of a failure needs: the first traceback, else a widget, else the end."""
    page.evaluate("""() => {
      const err = Array.from(document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
        .find(e => e.querySelector('.ansi-red-fg'));
      const target = err || document.querySelector('.jp-OutputArea-output .jupyter-widgets')
        || Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell')).pop();
      if (target) target.scrollIntoView({block: 'center'});
    }""")
    page.wait_for_timeout(300)
