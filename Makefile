# Each target makes its own virtualenv (.venv) on first use. PYTHON picks the interpreter
# (e.g. make test PYTHON=/usr/bin/python3; Debian's needs its python3-venv package).
PYTHON ?= python3
VENV ?= .venv
EXTRAS ?= test,train
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test test-fast test-system-python stylize stylize-dataset app export bench train train-smoke ablations fixtures docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

# onnxruntime-web for the exported page's browser test and benchmark (npm; kept out of git).
ORT_WEB := node_modules/onnxruntime-web
$(ORT_WEB)/package.json:
	npm install --no-save --no-audit --no-fund onnxruntime-web@1.30.0

test: $(STAMP) $(ORT_WEB)/package.json
	$(PY) -m pytest -n 2 --dist loadfile tests

# The suite less its slow, browser and Ray tests (markers in pyproject.toml): under 3 minutes on 2
# cores, with neither npm nor Chromium. CI runs make test.
test-fast: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -m "not slow and not browser and not ray" tests

# Saved programs and start-up under a second interpreter (default Debian's own Python, whose
# pickles differ from pyenv's), in .venv-system; CI runs it after make test.
SYSTEM_PYTHON ?= /usr/bin/python3
SYSTEM_TESTS := tests/test_programs.py \
  tests/test_losses.py::test_adain_does_not_import_training_or_extra_dependencies \
  tests/test_cli.py::test_huge_page_restart_only_for_several_images
test-system-python:
	$(MAKE) install PYTHON=$(SYSTEM_PYTHON) VENV=.venv-system EXTRAS=test
	.venv-system/bin/python -c 'import sys; print("tests under", sys.executable, sys.version.split()[0])'
	.venv-system/bin/python -m pytest -n 2 $(SYSTEM_TESTS)

# The bundled demo pair; MODEL=microast for the real-time network (its four files, fetched on first use).
stylize: MODEL ?= adain
stylize: $(STAMP)
	$(PY) -m adain.stylize --alpha 0.8 --model $(MODEL)

# A stylized copy of a dataset (python -m adain.stylize_dataset, stylize-datasets' flags): killed
# or stopped, the same command resumes. ARGS adds flags, e.g. ARGS="--num-styles 2 --shard 0/4".
stylize-dataset: CONTENT ?= data/imagenet/train
stylize-dataset: STYLE ?= data/wikiart
stylize-dataset: OUTPUT ?= data/stylized-imagenet/train
stylize-dataset: $(STAMP)
	$(PY) -m adain.stylize_dataset --content-dir $(CONTENT) --style-dir $(STYLE) --output-dir $(OUTPUT) $(ARGS)

# The web page on http://127.0.0.1:7860 (ARGS adds flags, e.g. ARGS="--port 8000").
app: $(STAMP)
	$(PY) -m adain.app $(ARGS)

# The model as ONNX into OUTPUT (python -m adain.export); ARGS adds flags, e.g. ARGS=--web.
export: OUTPUT ?= output/onnx
export: $(STAMP)
	$(PY) -m adain.export --output $(OUTPUT) $(ARGS)

bench: $(STAMP) $(ORT_WEB)/package.json
	$(PY) -m adain.bench
	$(PY) -m adain.export.bench
	$(PY) tools/bench_web.py --ort-web $(ORT_WEB)
	$(PY) -m train.bench --bf16
	$(PY) -m adain.augment.bench

# The paper's decoder recipe, or MODEL=microast MicroAST's (train/configs/microast.py).
# CONTENT / STYLE: an image folder (recursive) or tfds:NAME[/CONFIG][:SPLIT]; a missing dataset
# stops with how to get it. Killed or stopped, the same command resumes. ARGS adds flags, e.g.
# ARGS=--config.max_steps=1000.
train: MODEL ?= adain
train: CONTENT ?= tfds:coco/2017
train: STYLE ?= data/wikiart
train: WORKDIR ?= workdir/train
train: $(STAMP)
	$(PY) -m train --workdir $(WORKDIR) \
	  --config train/configs/$(if $(filter microast,$(MODEL)),microast,default).py \
	  --config.content=$(CONTENT) --config.style=$(STYLE) $(ARGS)

# A tiny fresh run on images the pipeline draws itself (under 2 minutes on a laptop CPU);
# MODEL=microast for MicroAST's recipe, whose workdir then stylizes:
# python -m adain.stylize --model microast --weights workdir/smoke --content ... --style ...
train-smoke: MODEL ?= adain
train-smoke: $(STAMP)
	rm -rf workdir/smoke
	$(PY) -m train --workdir workdir/smoke --config train/configs/smoke.py:$(MODEL)

# The paper's Fig. 6 ablations: the four variants trained with the same seed and data into
# WORKDIR/NAME (re-running resumes), then evaluated together into WORKDIR/report (results.json,
# results.md, losses.png, curves.png, grid_NAME.jpg). ABLATIONS="adain microast ..." adds
# MicroAST's recipe beside them. ARGS adds --config.X=... to every run;
# EVAL_CONTENT / EVAL_STYLE (image folders; default CONTENT / STYLE) and EVAL_ARGS go to
# train.evaluate.
ABLATIONS ?= adain concat bn_decoder in_decoder
ablations: CONTENT ?= tfds:coco/2017
ablations: STYLE ?= data/wikiart
ablations: VGG ?= checkpoints/vgg_normalised.pth
ablations: STEPS ?= 160000
ablations: WORKDIR ?= workdir/ablations
ablations: EVAL_CONTENT ?= $(CONTENT)
ablations: EVAL_STYLE ?= $(STYLE)
ablations: $(STAMP)
	set -e; for v in $(ABLATIONS); do \
	  config=train/configs/ablations/$$v.py; [ $$v != adain ] || config=train/configs/default.py; \
	  [ $$v != microast ] || config=train/configs/microast.py; \
	  $(PY) -m train --workdir $(WORKDIR)/$$v --config $$config --config.content=$(CONTENT) \
	    --config.style=$(STYLE) --config.vgg=$(VGG) --config.max_steps=$(STEPS) $(ARGS); \
	done
	$(PY) -m train.evaluate $(foreach v,$(ABLATIONS),--decoder $(v)=$(WORKDIR)/$(v)) --vgg $(VGG) \
	  --content $(EVAL_CONTENT) --style $(EVAL_STYLE) --output $(WORKDIR)/report $(EVAL_ARGS)
	$(PY) -m train.plot $(foreach v,$(ABLATIONS),$(v)=$(WORKDIR)/$(v)) --output $(WORKDIR)/report/curves.png

# Regenerates tests/fixtures with PyTorch (a separate venv; the test suite never needs torch).
fixtures:
	test -x .venv-fixtures/bin/python || $(PYTHON) -m venv .venv-fixtures
	.venv-fixtures/bin/pip install -q torch==2.13.0 numpy pillow torchfile
	.venv-fixtures/bin/python tools/make_weight_fixtures.py
	.venv-fixtures/bin/python tools/make_parity_fixtures.py
	.venv-fixtures/bin/python tools/make_train_fixtures.py
	.venv-fixtures/bin/python tools/make_evaluate_fixtures.py
	.venv-fixtures/bin/python tools/make_microast_fixtures.py

# The documentation site (MkDocs, docs/ and mkdocs.yml) into site/; --strict fails on any broken
# link or API reference.
docs: $(STAMP)
	$(PY) -m mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) .pytest_cache site
