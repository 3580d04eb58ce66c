# Each target makes its own virtualenv (.venv) on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test stylize app bench train train-smoke fixtures clean

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

# The web page on http://127.0.0.1:7860 (ARGS adds flags, e.g. ARGS="--port 8000").
app: $(STAMP)
	$(PY) -m adain.app $(ARGS)

bench: $(STAMP)
	$(PY) -m adain.bench
	$(PY) -m train.bench --bf16

# The paper's decoder recipe. CONTENT / STYLE: an image folder (recursive) or
# tfds:NAME[/CONFIG][:SPLIT]; a missing dataset stops with how to get it. Killed or stopped,
# the same command resumes. ARGS adds flags, e.g. ARGS=--config.max_steps=1000.
train: CONTENT ?= tfds:coco/2017
train: STYLE ?= data/wikiart
train: WORKDIR ?= workdir/train
train: $(STAMP)
	$(PY) -m train --workdir $(WORKDIR) --config train/configs/default.py \
	  --config.content=$(CONTENT) --config.style=$(STYLE) $(ARGS)

# A tiny fresh run on images the pipeline draws itself (under 2 minutes on a laptop CPU).
train-smoke: $(STAMP)
	rm -rf workdir/smoke
	$(PY) -m train --workdir workdir/smoke --config train/configs/smoke.py

# Regenerates tests/fixtures with PyTorch (a separate venv; the test suite never needs torch).
fixtures:
	test -x .venv-fixtures/bin/python || $(PYTHON) -m venv .venv-fixtures
	.venv-fixtures/bin/pip install -q torch==2.13.0 numpy pillow torchfile
	.venv-fixtures/bin/python tools/make_weight_fixtures.py
	.venv-fixtures/bin/python tools/make_parity_fixtures.py
	.venv-fixtures/bin/python tools/make_train_fixtures.py

clean:
	rm -rf $(VENV) .pytest_cache
