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

.PHONY: setup lint test train bench lab colab-links notebooks clean

setup: $(VENV)/.installed

# Rebuilt only when requirements change.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements.txt $(QUIET)
	$(PIP_INSTALL) --no-deps --no-build-isolation -e . $(QUIET)
	$(PY) -c "import helpers, torch, albumentations, torchsummary, captum, nbclient, jupyterlab"
	touch $@

# ruff, pinned in requirements.txt: lint, and the format it would write.
lint: setup
	$(VENV)/bin/ruff check helpers tests scripts
	$(VENV)/bin/ruff format --check helpers tests scripts

# Unit tests, then each of the five notebooks once, as in Colab (notebook 4 in smoke mode: one short epoch).
test: setup
	$(PY) -m pytest -q -m "not notebooks" tests
	$(PY) -m pytest -q -m notebooks tests

train: setup
	$(PY) -m helpers train --out runs/published $(ARGS)

bench: setup
	$(PY) -m helpers bench $(ARGS)

# JupyterLab on this project's .venv kernel, in notebooks/. HEADLESS=1: no browser and no token, on
# 127.0.0.1 only, for a test or a tunnel; PORT=N picks the port. (Jupyter refuses root without --allow-root.)
lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --port=$(PORT) $(if $(filter 0,$(shell id -u)),--allow-root) \
		$(if $(filter 1,$(HEADLESS)),--no-browser --ip=127.0.0.1 --IdentityProvider.token=)

# Rewrite every notebook's Colab badge and set-up cell from [project.urls] Repository in pyproject.toml.
colab-links: setup
	$(PY) -m helpers colab-links

# Re-execute the notebooks in place, figures inline and in img/: their committed form. Notebook 04 trains
# what the device decides (a few minutes' preview on a CPU, the recipe on a GPU); SMOKE=1: seconds.
notebooks: setup
	SMOKE=$(SMOKE) $(PY) scripts/execute_notebooks.py $(NOTEBOOKS)

clean:
	rm -rf $(VENV) runs .pytest_cache
