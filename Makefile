# Each target makes its own virtualenv (.venv) on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test stylize bench train train-smoke fixtures clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,train]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n 2 tests

stylize: $(STAMP)
	$(PY) -m adain.stylize --alpha 0.8

bench: $(STAMP)
	$(PY) -m adain.bench

# Regenerates tests/fixtures with PyTorch (a separate venv; the test suite never needs torch).
fixtures:
	test -x .venv-fixtures/bin/python || $(PYTHON) -m venv .venv-fixtures
	.venv-fixtures/bin/pip install -q torch==2.13.0 numpy pillow torchfile
	.venv-fixtures/bin/python tools/make_weight_fixtures.py
	.venv-fixtures/bin/python tools/make_parity_fixtures.py

clean:
	rm -rf $(VENV) .pytest_cache
