# The two commands of the README. Each sets up .venv on first use (or when pyproject.toml or
# constraints.txt change), then does its job:
#   make run     gradcmp run on the bundled data/xy.csv (pass options with ARGS="...")
#   make test    lint (ruff) and the test suite (pytest)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.gradcmp-installed

.PHONY: run test lint device-wheels

$(STAMP): pyproject.toml constraints.txt setup.py gradcmp/_fastcsv.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	@$(BIN)/gradcmp run $(ARGS)

lint: $(STAMP)
	@$(BIN)/ruff check .

test: lint
	@$(BIN)/python -m pytest $(ARGS)

# Wheels the GPU machine's image lacks (its Python 3.12), for scripts/gpu_check.sh.
device-wheels:
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
	  --platform manylinux2014_x86_64 -d .device-wheels gmpy2==2.3.2 array-api-compat==1.16.0
