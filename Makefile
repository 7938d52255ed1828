# embedserve: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
HOST   := $(or $(HOST),$(EMBEDSERVE_HOST),127.0.0.1)
PORT   := $(or $(PORT),$(EMBEDSERVE_PORT),8000)
ARGS   ?=
BIN    := $(VENV)/bin

.PHONY: run test install install-test browser lint typecheck unit bench bench-quick bench-controls bench-job bench-ray bench-eval dist image test-image clean

# Packages are installed with uv (seconds, where pip takes minutes), falling back to pip. uv does
# not read pip's configuration, so pip's find-links (a local torch wheel, say) and constraints
# file are passed on. Bytecode is compiled at install, as pip does: without it every process
# (a server, a Ray worker) compiles what it imports again where PYTHONDONTWRITEBYTECODE is set
# (importing torch took 31 s instead of 14 s here).
FIND_LINKS := $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
CONSTRAINT := $(or $(PIP_CONSTRAINT),$(shell $(PYTHON) -m pip config list 2>/dev/null | sed -n "s/^global\.constraint='\(.*\)'$$/\1/p"))
UV_INSTALL := $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python $(addprefix --find-links ,$(FIND_LINKS)) $(addprefix --constraint ,$(CONSTRAINT))
INSTALL     = $(UV_INSTALL) $(1) || $(BIN)/pip install --quiet $(1)
comma      := ,# a bare comma would split $(call ...) arguments

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet uv || echo "uv not installed: pip installs the packages"

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(call INSTALL,-e ".[export$(comma)jobs]")
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(call INSTALL,-e ".[test]")
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed            ## create .venv and install the server
install-test: $(VENV)/.installed-test  ## create .venv and install the server with test extras

run: install                           ## serve the bundled model on $(HOST):$(PORT)
	$(BIN)/embedserve serve --host $(HOST) --port $(PORT) $(ARGS)

browser:                               ## Debian's Chromium for the playground's browser test (as root; else that test is skipped)
	bash scripts/install-browser.sh

lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install-test
	$(BIN)/mypy

unit: install-test
	$(BIN)/pytest -q $(ARGS)

test: lint typecheck browser unit      ## install with test extras, lint, type-check and run every test

bench: install-test                    ## every benchmark (about an hour: the comparison with its soak, backends, controls, job, Ray, eval): benchmarks/results/
	$(BIN)/python benchmarks/compare.py --soak 100000
	$(BIN)/python benchmarks/backend_sweep.py
	$(BIN)/python benchmarks/plots.py
	$(BIN)/python benchmarks/vector_controls.py
	$(BIN)/python benchmarks/embed_job.py
	$(BIN)/python benchmarks/ray_scaling.py
	$(BIN)/python benchmarks/eval_speed.py

bench-controls: install-test           ## per-request controls alone (compact outputs, ...): a few minutes
	$(BIN)/python benchmarks/vector_controls.py

bench-job: install-test                ## embedserve embed: tokens/s against the raw executor, peak RSS to 1M texts
	$(BIN)/python benchmarks/embed_job.py

bench-ray: install-test                ## Ray: the job with 1 and 2 actors, serve --ray with 1 and 2 replicas, vs local (about 12 min)
	$(BIN)/python benchmarks/ray_scaling.py

bench-eval: install-test               ## embedserve eval: client texts/s per batch size and concurrency, one MTEB task served vs in-process (about 3 min)
	$(BIN)/python benchmarks/eval_speed.py

bench-quick: install-test              ## the same on 500 texts, no soak (about 4 min)
	$(BIN)/python benchmarks/compare.py --quick

image:                                 ## the container image embedserve:latest (podman, or docker); BASE=IMAGE to choose the base
	bash scripts/image.sh build embedserve:latest

test-image: install-test               ## build the image, then test it from outside: contract, parity, user, no torch, SIGTERM
	bash scripts/image.sh build embedserve:latest
	EMBEDSERVE_TEST_IMAGE=embedserve:latest $(BIN)/pytest -q tests/e2e/test_image.py

dist: install                          ## build the sdist and the wheel into dist/ (the wheel's core install has no PyTorch)
	$(BIN)/uv build --out-dir dist . || $(BIN)/python -m pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
