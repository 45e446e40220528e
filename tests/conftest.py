"""Test session setup: decide GPU vs CUDA simulator before anything imports numba."""
import os
import sys
from pathlib import Path

import course  # noqa: F401  (sets NUMBA_ENABLE_CUDASIM when no GPU is usable)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

os.environ.setdefault("HYPOTHESIS_PROFILE", "ci")

from hypothesis import settings  # noqa: E402

settings.register_profile("ci", deadline=None, print_blob=True)
settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
