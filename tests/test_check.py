"""The instructor's gate over every lesson present: ``python -m autograder check``."""
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.layout import Layout

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_check_all_lessons():
    lessons = Layout(ROOT).lessons()
    assert lessons, "no lessons under solutions/"
    proc = subprocess.run([sys.executable, "-m", "autograder", "check", "--jobs", "2"],
                          capture_output=True, text=True, cwd=ROOT, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for lesson in lessons:
        assert any(line.startswith(lesson) and " ok " in line for line in proc.stdout.splitlines()), proc.stdout
