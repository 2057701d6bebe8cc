# `make train` runs the published 100-epoch recipe; `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=
SMOKE ?= 1
export NO_ALBUMENTATIONS_UPDATE := 1
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))

.PHONY: setup test train bench notebooks clean

setup: $(VENV)/.installed

# Rebuilt only when requirements change; pip's "is ignored" lines are local-index noise.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import helpers, torch, albumentations, torchsummary, nbval"
	touch $@

# Unit tests, then the five notebooks in smoke mode (SMOKE=1: a small subset, one epoch).
test: setup
	$(PY) -m pytest -q tests
	SMOKE=1 $(PY) -m pytest -q --nbval-lax -p no:cacheprovider $(NOTEBOOKS)

train: setup
	$(PY) -m helpers.train --out runs/published $(ARGS)

bench: setup
	$(PY) -m helpers.bench $(ARGS)

# Re-execute the notebooks in place (SMOKE=0 for the full 100-epoch training in notebook 04).
notebooks: setup
	cd notebooks && for notebook in $(notdir $(NOTEBOOKS)); do \
		SMOKE=$(SMOKE) ../$(VENV)/bin/jupyter-execute --inplace --timeout=-1 $$notebook || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
