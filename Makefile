# The two commands of this project:
#   make run   builds .venv if needed, then runs the whole pipeline on the bundled demo
#   make test  builds .venv if needed, then runs the test suite
# Everything else here is set-up they share.

# Every path is anchored at the repository root and every recipe runs there, so
# `make -C <root> run` and `make -f <root>/Makefile run` work from any folder.
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
PYTHON ?= python3
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FASTBPE_VERSION := 0.1.0
CORES ?= $(shell nproc)

export PATH := $(BIN):$(PATH)

.PHONY: run test study lint bench readme-check readme-update clean-venv

# The demo's models are small: under profiles/laptop (one thread per job, several jobs at
# once) its workflow took 4 min 40 s on 2 cores, against 7 min 2 s with 2-thread jobs.
run: $(STAMP)
	cd $(ROOT) && $(BIN)/snakemake --cores $(CORES) --profile profiles/laptop all
	cd $(ROOT) && $(BIN)/snakemake --profile profiles/laptop --report results/report.html

test: $(STAMP)
	cd $(ROOT) && $(BIN)/python -m pytest -q tests

# The study (issue 14): the paper's claims tested on real data at CPU scale, ending with
# results/tables/findings.{md,csv,tex} (configs/study.yaml; measured time in the README). DATA is
# the folder with study/, xnli/, para/, dict/ (default: ../shared/data beside the repo).
# profiles/laptop runs one thread per training job, two small models at once on 2 cores.
DATA ?= $(ROOT)/../shared/data
STUDY := --profile profiles/laptop --configfile configs/study.yaml --config data_root=$(abspath $(DATA))

# (The targets come first: --configfile and --config take every word after them.)
study: $(STAMP)
	cd $(ROOT) && $(BIN)/snakemake all findings --cores $(CORES) $(STUDY)
	cd $(ROOT) && $(BIN)/snakemake all findings --report results/report.html $(STUDY)

# The benchmark suite (issue 8; not part of `test`): benchmarks/results/*.json and the
# table in benchmarks/README.md. Minutes; see benchmarks/README.md.
bench: $(STAMP)
	cd $(ROOT) && $(BIN)/python -m benchmarks

# After `make run`: the README's excerpts of the run's outputs (Table 4, the translation
# example) against the files the run wrote (xlm/report/excerpts.py); readme-update copies
# the files into the README. After `make study`: the same with RUN=study (its findings).
RUN ?= run
readme-check: $(STAMP)
	cd $(ROOT) && $(BIN)/python -m xlm.report.excerpts README.md --check --run $(RUN)

readme-update: $(STAMP)
	cd $(ROOT) && $(BIN)/python -m xlm.report.excerpts README.md --update --run $(RUN)

# The GPU checks of issue 16 in one command (at most 8 minutes on one GPU):
# benchmarks/results/gpu.json and a summary; without a GPU it says so and exits 0.
.PHONY: gpu-check
gpu-check: $(STAMP)
	cd $(ROOT) && $(BIN)/python -m benchmarks.gpu_check

lint: $(STAMP)
	cd $(ROOT) && $(BIN)/ruff check .
	cd $(ROOT) && $(BIN)/snakemake --lint

# torch first (pinned: a local CPU wheel; an unpinned torch pulls gigabytes of CUDA),
# then cython + numpy, which fastBPE's setup.py needs at build time (no build isolation),
# then the package with its pinned dependencies, then fastBPE's `fast` command-line tool,
# built from the same sdist, since learning BPE codes needs it.
$(STAMP): $(ROOT)/pyproject.toml $(ROOT)/Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q cython==3.3.1 numpy==2.4.6
	$(BIN)/pip install -q --no-build-isolation fastbpe==$(FASTBPE_VERSION)
	cd $(ROOT) && $(BIN)/pip install -q -e '.[dev]'
	cd $(ROOT) && rm -rf build/fastbpe && mkdir -p build/fastbpe
	cd $(ROOT) && $(BIN)/pip download -q --no-deps --no-binary :all: -d build/fastbpe fastbpe==$(FASTBPE_VERSION)
	cd $(ROOT) && tar -xzf build/fastbpe/*.tar.gz -C build/fastbpe
	cd $(ROOT)/build/fastbpe/*-$(FASTBPE_VERSION)/ && g++ -std=c++11 -pthread -O3 fastBPE/main.cc -IfastBPE -o $(BIN)/fast
	touch $(STAMP)

clean-venv:
	rm -rf $(VENV) $(ROOT)/build
