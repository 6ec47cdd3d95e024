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

man: install
	$(BIN)/python tools/make_man.py man

clean:
	rm -rf $(DEMO_OUT) .pytest_cache build *.egg-info
