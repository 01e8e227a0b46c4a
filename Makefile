# aurl: run `make help` for the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Everything the tests cover: Word2Vec (gensim), the benchmarks (pytorchvideo, scikit-video)
# and litdata shards (litdata; moto's S3 server is a dev dependency).
EXTRAS := dev,word2vec,bench,streaming
# Tests and runs never touch the network: models load from local folders, W&B logs offline.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export WANDB_MODE ?= offline

.DEFAULT_GOAL := help
.PHONY: help install test test-fast lint format train bench bench-gpu clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -c constraints.txt -e '.[$(EXTRAS)]'
	$(BIN)/pip check
	touch $@

install: $(VENV)/.installed ## Create .venv and install aurl with all extras at the versions of constraints.txt (idempotent)

test: install ## Run the whole test suite, slow and DDP tests included
	$(BIN)/pytest tests

test-fast: install ## Run the tests not marked slow
	$(BIN)/pytest tests -m "not slow"

lint: install ## Check style with ruff
	$(BIN)/ruff check src data_modules tests benchmarks
	$(BIN)/ruff format --check src data_modules tests benchmarks

format: install ## Format and autofix with ruff
	$(BIN)/ruff format src data_modules tests benchmarks
	$(BIN)/ruff check --fix src data_modules tests benchmarks

train: install ## The main job: train and evaluate the smoke experiment on the synthetic benchmark
	$(BIN)/aurl fit --config experiments/smoke.yaml

bench: install ## Run the benchmarks into benchmarks/results/ (QUICK=1: a few minutes)
	$(BIN)/python -m benchmarks.data_throughput $(if $(QUICK),--quick)
	$(BIN)/python -m benchmarks.train_throughput $(if $(QUICK),--quick)
	$(BIN)/python -m benchmarks.inference $(if $(QUICK),--quick)
	$(BIN)/python -m benchmarks.ablation $(if $(QUICK),--quick)

bench-gpu: install ## GPU benchmark, <= 8 min on one H200: benchmarks/results/gpu.{json,md} (TINY=1: CPU smoke run; WORKERS=N)
	PYTHON=$(BIN)/python bash benchmarks/gpu.sh $(if $(TINY),--tiny) $(if $(WORKERS),--workers $(WORKERS))

clean: ## Remove caches and run outputs (keeps .venv)
	rm -rf .pytest_cache .ruff_cache .hypothesis runs lightning_logs wandb
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
