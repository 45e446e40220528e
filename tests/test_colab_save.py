"""course.colab.save_notebook writes the notebook the Colab front end returns, and says what to do
where it cannot (outside Colab, or when Colab answers without a notebook)."""
from __future__ import annotations

import json
import sys
import types

import nbformat
import pytest

from course import colab


def _fake_colab(monkeypatch, reply):
    asked = []
    message = types.SimpleNamespace(blocking_request=lambda req, timeout_sec: asked.append(req) or reply)
    google = types.ModuleType("google")
    pkg = types.ModuleType("google.colab")
    pkg._message = message
    google.colab = pkg
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", pkg)
    return asked


def test_writes_the_open_notebook(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    asked = _fake_colab(monkeypatch, {"ipynb": json.loads(nbformat.writes(nb))})
    out = colab.save_notebook(tmp_path / "00_welcome.ipynb")
    assert asked == ["get_ipynb"]
    back = nbformat.read(out, as_version=4)
    assert [c.source for c in back.cells] == ["x = 1"]


def test_says_what_to_do_when_colab_returns_nothing(tmp_path, monkeypatch):
    _fake_colab(monkeypatch, {"ipynb": None})
    with pytest.raises(RuntimeError, match="Download .ipynb"):
        colab.save_notebook(tmp_path / "a.ipynb")
    assert not (tmp_path / "a.ipynb").exists()


def test_outside_colab_it_says_the_notebook_is_a_file(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", None)
    with pytest.raises(RuntimeError, match="already a file"):
        colab.save_notebook(tmp_path / "a.ipynb")
