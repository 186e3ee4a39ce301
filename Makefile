# The two commands of this project:
#   make run   builds .venv if needed, then runs the whole pipeline on the bundled demo
#   make test  builds .venv if needed, then runs the test suite
# Everything else here is set-up they share.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FASTBPE_VERSION := 0.1.0
CORES ?= $(shell nproc)

export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test lint bench clean-venv

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) all
	$(BIN)/snakemake --report results/report.html

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# The benchmark suite (issue 8; not part of `test`): benchmarks/results/*.json and the
# table in benchmarks/README.md. Minutes; see benchmarks/README.md.
bench: $(STAMP)
	$(BIN)/python -m benchmarks

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint

# torch first (pinned: a local CPU wheel; an unpinned torch pulls gigabytes of CUDA),
# then cython + numpy, which fastBPE's setup.py needs at build time (no build isolation),
# then the package with its pinned dependencies, then fastBPE's `fast` command-line tool,
# built from the same sdist, since learning BPE codes needs it.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q cython==3.3.1 numpy==2.4.6
	$(BIN)/pip install -q --no-build-isolation fastbpe==$(FASTBPE_VERSION)
	$(BIN)/pip install -q -e '.[dev]'
	rm -rf build/fastbpe && mkdir -p build/fastbpe
	$(BIN)/pip download -q --no-deps --no-binary :all: -d build/fastbpe fastbpe==$(FASTBPE_VERSION)
	tar -xzf build/fastbpe/*.tar.gz -C build/fastbpe
	cd build/fastbpe/*-$(FASTBPE_VERSION)/ && g++ -std=c++11 -pthread -O3 fastBPE/main.cc -IfastBPE -o $(abspath $(BIN))/fast
	touch $(STAMP)

clean-venv:
	rm -rf $(VENV) build
