# The two commands a newcomer needs: `make run` (embedded default, demo data) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/perly
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test fuzz lint format worker install install-dev services-check migrate clean bench bench-api

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

# Embedded default: SQLite, local-memory cache, eager tasks. No services needed.
run: install
	DEBUG=true $(BIN)/python manage.py migrate --noinput -v 0
	DEBUG=true $(BIN)/python manage.py seed_demo
	DEBUG=true $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

services-check: install-dev
	@DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python scripts/check_services.py

test: services-check
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest $(PYTEST_ARGS)

# Only the schemathesis fuzz of /v1/openapi.json (it also runs as part of `make test`).
fuzz: services-check
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest tests/reliability/test_fuzz_openapi.py $(PYTEST_ARGS)

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

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
