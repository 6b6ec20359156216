# OneHub: `make run` and `make test` do all set-up on a fresh machine with Python 3.11.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export ONEHUB_DATA_DIR ?= $(CURDIR)/data
export ONEHUB_DEPARTMENTS_DIR ?= $(CURDIR)/departments

.PHONY: run test install lock lint typecheck clean sample pipelines serve airflow stop

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# constraints.txt is the lock: install exactly it, without resolving (reproducible), then check.
	$(BIN)/pip install --quiet --no-deps -r constraints.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	@touch $(STAMP)

install: $(STAMP)

## run: install, build the sample department systems, run every pipeline through Airflow, serve the API
run: $(STAMP)
	$(BIN)/onehub init
	$(BIN)/onehub sample
	$(BIN)/onehub pipelines run
	$(BIN)/onehub demo
	$(BIN)/onehub serve

## test: the whole suite (PostgreSQL/MariaDB tests skip when the servers are down, unless CI=true)
test: $(STAMP)
	$(BIN)/python -m pytest -q

## airflow: Airflow standalone (SQLite) on http://localhost:8080 with OneHub's DAGs unpaused; prints the login
airflow: $(STAMP)
	$(BIN)/onehub init
	$(BIN)/onehub sample
	$(BIN)/onehub pipelines standalone --port 8080

## stop: stop what `make airflow` started
stop: $(STAMP)
	$(BIN)/onehub pipelines stop

## lock: re-resolve pyproject.toml's dependencies in a scratch venv and rewrite constraints.txt
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e ".[dev]"
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt
	rm -rf .lock-venv

lint: $(STAMP)
	$(BIN)/ruff check catalog_schemas connectors quality exchange license_store onehub sample_systems dags tests

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf data departments
