# The two commands of the README: `make demo` and `make test`. Both create the
# virtual environment on first use (and again whenever pyproject.toml changes).

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
# Install the CPU build of torch before the project, so pip does not pick a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: demo test lint clean celery-local

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev,celery]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/atalaia demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The DAGs on Airflow's CeleryExecutor with two workers, checked (docs/distributed.md).
celery-local: $(VENV)/.installed
	PYTHON=$(BIN)/python docker/celery-local.sh

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) atalaia.db atalaia-data .pytest_cache
