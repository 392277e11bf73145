# Two commands do everything on a fresh machine (see README.md):
#   make run    generate the default data, run the local TFX pipeline, push, report
#   make test   run the test suite
# Both create or refresh .venv first; with nothing changed that step is a no-op.

SHELL := /bin/bash
VENV  := .venv
STAMP := $(VENV)/.installed
PYTHON310 ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10; do \
               $$p -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && { echo $$p; break; }; done)
export TF_USE_LEGACY_KERAS := 1
export PYTHONDONTWRITEBYTECODE := 1

RUN_ARGS ?=
TEST_ARGS ?=

.PHONY: run test venv bench clean

venv: $(STAMP)

$(STAMP): setup.py requirements/constraints.txt
	@test -n "$(PYTHON310)" || { echo "error: Python 3.10 not found (pyenv install 3.10)"; exit 1; }
	@test -x $(VENV)/bin/python || $(PYTHON310) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check 'pip==24.2'
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check \
	    -c requirements/constraints.txt -e '.[test]'
	@touch $@

run: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 PYTHONWARNINGS=ignore::FutureWarning \
	    $(VENV)/bin/python -m pipeline.local_runner $(RUN_ARGS)

test: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(VENV)/bin/python -m pytest tests $(TEST_ARGS)

BENCH ?= pipeline_components main_job models train_step serving latency quality ope bidding bandit
bench: $(STAMP)
	for b in $(BENCH); do $(VENV)/bin/python -m bench.$$b || exit 1; done

clean:
	rm -rf workdir
