# Two commands: `make lab` and `make test`. Both create .venv when it is missing and
# (re)install only when pyproject.toml or the lock file changed, so a second run is fast.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
LOCK   := .ci/constraints.txt
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# Jupyter refuses to run as root (containers, some CI images) unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test install check build clean-work

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python >= 3.10 is required")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c $(LOCK) -e ".[dev]"
	$(PY) -m course.providers.cpu.warm   # compile the CPU provider's loops once, into numba's cache
	@touch $(STAMP)

# Learners get JupyterLab without nbgrader's instructor tools (Formgrader, Create Assignment, the
# course and assignment lists): the config folder autograder/learner_lab switches them off for this
# server only (nothing is written to the user's or the venv's Jupyter config).
LEARNER_LAB := $(CURDIR)/autograder/learner_lab

lab: $(STAMP)
	JUPYTER_CONFIG_PATH="$(LEARNER_LAB)$(if $(JUPYTER_CONFIG_PATH),:$(JUPYTER_CONFIG_PATH))" $(VENV)/bin/jupyter lab --notebook-dir=lessons $(ROOT_FLAG)

test: $(STAMP)
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

build: $(STAMP)
	$(PY) -m autograder build

check: $(STAMP)
	$(PY) -m autograder check

clean-work:
	rm -rf work gradebook.db
