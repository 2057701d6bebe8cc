# `make train` runs the published 100-epoch recipe; `make test` runs the tests; `make lab` opens the
# notebooks in JupyterLab. Each sets up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=
SMOKE ?= 0
PORT ?= 8888
HEADLESS ?= 0
export NO_ALBUMENTATIONS_UPDATE := 1
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# A failed pip install fails the recipe: pipefail sees pip's status through the noise filter.
SHELL := bash
.SHELLFLAGS := -o pipefail -ec
# pip's "Location ... is ignored" warnings come from this machine's extra local package index.
PIP_INSTALL := $(PY) -m pip install -q --disable-pip-version-check
QUIET := 2>&1 | { grep -v "is ignored" || true; }

.PHONY: setup lint test train bench lab colab-links colab-check notebooks clean

setup: $(VENV)/.installed

# Rebuilt only when requirements change.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements.txt $(QUIET)
	$(PIP_INSTALL) --no-deps --no-build-isolation -e . $(QUIET)
	$(PY) -c "import helpers, torch, albumentations, torchsummary, captum, pyarrow, nbclient, nbval, jupyterlab"
	touch $@

# Colab's own package set (requirements-colab.txt, from googlecolab/backend-info) on Python 3.13, as Colab has.
# COLAB_PYTHON: the first Python 3.13 that runs, on the PATH or among pyenv's versions.
COLAB_PYTHON ?= $(firstword $(shell for python in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13; \
	do $$python -c "" 2>/dev/null && echo $$python; done))
COLAB_VENV := .venv-colab
$(COLAB_VENV)/.installed: requirements-colab.txt
	@test -n "$(COLAB_PYTHON)" || { echo "error: no Python 3.13 found: install it, or pass COLAB_PYTHON=/path/to/python3.13"; exit 2; }
	$(COLAB_PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-colab.txt $(QUIET)
	touch $@

# ruff, pinned in requirements.txt: lint, and the format it would write.
lint: setup
	$(VENV)/bin/ruff check helpers tests scripts
	$(VENV)/bin/ruff format --check helpers tests scripts

# Unit tests, then each of the five notebooks once with nbval (notebook 4 in smoke mode: one short epoch; the cells
# tagged nbval-check-output must show their committed output), then JupyterLab started as `make lab` starts it.
NBVAL := -p no:cacheprovider --nbval-lax --nbval-current-env
test: setup
	$(PY) -m pytest -q -m "not notebooks and not lab" tests
	SMOKE=1 $(PY) -m pytest -q $(NBVAL) notebooks
	$(PY) -m pytest -q -m lab tests
	@echo "(the same notebooks on Colab's own package set: make colab-check; last result in docs/colab.md)"

# The five notebooks as in Colab, on Colab's package set: each once, its set-up cell installing only what Colab
# lacks (captum, removed first, so that every check installs it as Colab does).
colab-check: $(COLAB_VENV)/.installed
	$(COLAB_VENV)/bin/python -m pip uninstall -q -y captum $(QUIET)
	PYTHONPATH=$(CURDIR) $(COLAB_VENV)/bin/python -m pytest -q -m notebooks -p no:cacheprovider -W ignore::DeprecationWarning \
		tests/test_notebooks.py

# Into runs/published unless ARGS name another --out, or --resume a run (continued in its own folder). A stop (Ctrl-C,
# SIGTERM, SIGHUP: status 130, 143, 129) has already said what was saved and how to continue, in make's words
# (HELPERS_RESUME): make adds no "Error 130" under it.
train: setup
	HELPERS_RESUME='make train ARGS="--resume {path}"' $(PY) -m helpers train \
		$(if $(or $(findstring --out,$(ARGS)),$(findstring --resume,$(ARGS))),,--out runs/published) $(ARGS) \
		|| { status=$$?; [ $$status -eq 130 ] || [ $$status -eq 143 ] || [ $$status -eq 129 ] || exit $$status; }

bench: setup
	$(PY) -m helpers bench $(ARGS)

# JupyterLab on this project's .venv kernel, in notebooks/. HEADLESS=1: no browser and no token, on
# 127.0.0.1 only, for a test or a tunnel; PORT=N picks the port. (Jupyter refuses root without --allow-root.)
lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=. --LabApp.default_url=/lab/tree/notebooks --port=$(PORT) $(if $(filter 0,$(shell id -u)),--allow-root) \
		$(if $(filter 1,$(HEADLESS)),--no-browser --ip=127.0.0.1 --IdentityProvider.token=)

# Rewrite every notebook's Colab badge and set-up cell from [project.urls] Repository in pyproject.toml.
colab-links: setup
	$(PY) -m helpers colab-links

# Re-execute the notebooks in place, figures inline and in img/: their committed form. Notebook 04 trains
# what the device decides (a few minutes' preview on a CPU, the recipe on a GPU); SMOKE=1: seconds.
notebooks: setup
	SMOKE=$(SMOKE) $(PY) scripts/execute_notebooks.py $(NOTEBOOKS)

clean:
	rm -rf $(VENV) $(COLAB_VENV) runs .pytest_cache
