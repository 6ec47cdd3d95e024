# fusekit developer and user entry points. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch by default; GPU users: `make install TORCH=torch`.
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
FUSEKIT := $(BIN)/fusekit
DEMO_OUT ?= demo-out

.PHONY: install demo test bench man weights clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

demo: install
	PATH="$(CURDIR)/$(BIN):$$PATH" sh examples/demo.sh $(DEMO_OUT)

# pytest exits 5 when it collects no test; that is not a failure of the code.
test: install
	$(BIN)/python -m pytest -q || [ $$? -eq 5 ]

bench: install
	for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# The compact model's bundled weights (docs/MODELS.md): one CPU run per task on synthetic degradations of
# $(SHARED)/train pairs (the model's degrade-<task> augmentation: degraded inputs described by the offline `stats`
# describer, `offline` text encoder, the clean pair as the loss target), seed 0, batch 8 on 96-pixel
# crops, 160-320 steps, one thread (same arithmetic order every time; ~20 min per task on a busy machine); run folders
# (data list, logs, checkpoints) stay in build/weights/<task>, the computed text guidance in
# build/weights/guidance-cache. `make -j2 weights` trains two tasks at once.
SHARED ?= ../shared
WEIGHTS_TASKS ?= ivf mif mef mff
WEIGHTS_EPOCHS_ivf := 30
WEIGHTS_EPOCHS_mif := 18
WEIGHTS_EPOCHS_mef := 20
WEIGHTS_EPOCHS_mff := 20
WEIGHTS_OPTS ?= --crop 96 --batch-size 8 --lr 2e-3 --schedule cosine --seed 0

weights: $(WEIGHTS_TASKS:%=weights-%)

weights-%: install
	rm -rf build/weights/$*
	OMP_NUM_THREADS=1 nice $(FUSEKIT) train --model compact --task $* --data $(SHARED)/train --describer stats \
	  --encoder offline --epochs $(WEIGHTS_EPOCHS_$*) $(WEIGHTS_OPTS) --out build/weights/$* \
	  --cache build/weights/guidance-cache
	cp build/weights/$*/model.safetensors fusekit/weights/.compact_$*.tmp
	mv fusekit/weights/.compact_$*.tmp fusekit/weights/compact_$*.safetensors

man: install
	$(BIN)/python tools/make_man.py man

clean:
	rm -rf $(DEMO_OUT) .pytest_cache build *.egg-info
