"""The hardened steps plugged into nbgrader's own autograde pipeline (``Autograde`` converter).

nbgrader's sanitize steps run first (ClearOutput, DeduplicateIds, OverwriteKernelspec,
OverwriteCells, CheckCellMetadata); then these replace its Execute step, and nbgrader's
SaveAutoGrades scores the result with its ``determine_grade``.
"""
from __future__ import annotations

import os

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, Execute, IgnorePattern,
                                    LimitOutput, NbGraderPreprocessor, SaveAutoGrades)
from nbgrader.utils import is_grade, is_solution

from autograder.execute import HardeningMixin
from autograder.scoring import clean_test_outputs
from autograder.settings import Limits

PROGRESS_ENV = "AUTOGRADER_PROGRESS"


class HardenedExecute(HardeningMixin, Execute):
    """nbgrader's Execute with the course's limits, reply-status recording and progress file."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._harden(Limits.from_env(), os.environ.get(PROGRESS_ENV))

    def preprocess(self, nb, resources=None, km=None):
        limits, progress = self._limits, self._progress_path
        # nbconvert re-runs NotebookClient.__init__ here, which reloads traits from config
        self._harden(limits, progress)
        return super().preprocess(nb, resources, km)

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)  # nbgrader: records a timeout as an error output
        self._record_reply(**kwargs)


class ScoreFromStatus(NbGraderPreprocessor):
    """Make each test cell's outputs agree with its execute status before nbgrader scores it:
    a passing cell loses stray stderr (warnings) and displayed values (no partial credit);
    a failing one always shows an error."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell):
            clean_test_outputs(cell)
        return cell, resources


AUTOGRADE_STEPS = [
    HardenedExecute,
    ScoreFromStatus,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
