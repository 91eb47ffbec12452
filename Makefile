# Two commands on a fresh machine (Python 3.10+ and pip only):
#   make train   - create .venv, install everything, train on MNIST, print test accuracy, write runs/NAME/
#   make test    - create .venv, install everything, run the whole test suite
# Data: --data-dir, then $MNIST_LOGREG_DATA, then ./data (downloaded there when missing).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
TRAIN_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install train test durations bench clean

install: $(STAMP)

# torch is pinned and installed first: 2.13.0 is the CPU build; an unpinned torch pulls CUDA (GBs).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/mnist-logreg train $(TRAIN_ARGS)

# the suite runs on every core (pytest-xdist), a test file per worker: its module fixtures run once;
# files are handed out in the order tests/conftest.py gives (the longest first, as tests/durations.json
# measured them), not by test count, which left the longest single tests to start last.
# Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set (as on this machine): each of the
# suite's ~70 Python processes otherwise compiled the package again (0.1 s each)
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# re-measure tests/durations.json (how long each test file takes): the order files are handed out in
durations: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder -q --store-durations $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/train_speed.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
