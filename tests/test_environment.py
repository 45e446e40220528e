"""environment.yml (Binder), pyproject.toml and the lock file must agree on every pin."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pins(lines):
    out = {}
    for line in lines:
        m = re.match(r"^\s*-?\s*([A-Za-z0-9_.\-]+)==([^\s;#]+)", line)
        if m:
            out[m[1].lower().replace("_", "-")] = m[2]
    return out


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["lab"])
    env = (ROOT / "environment.yml").read_text()
    got = _pins(env.split("pip:", 1)[1].splitlines())
    assert got == wanted, f"environment.yml pins {got} differ from pyproject.toml {wanted}"
    assert re.search(r"^\s*-\s*python=3\.\d+\s*$", env, re.M), "environment.yml must pin python"
    assert "- -e ." in env, "environment.yml must install the course in editable mode"


def test_pyproject_pins_match_lock():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [d for ds in project["optional-dependencies"].values() for d in ds]
    pinned = _pins(deps)
    assert len(pinned) == len(set(d.split("==")[0].lower() for d in deps)), "every dependency is pinned with =="
    lock = _pins((ROOT / ".ci/constraints.txt").read_text().splitlines())
    for name, ver in pinned.items():
        assert lock.get(name) == ver, f"{name}=={ver} in pyproject.toml but {lock.get(name)} in the lock"
