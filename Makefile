# SaaS Portal — `make run` serves the demo, `make test` runs the whole suite. Both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Django 5.2 LTS runs on Python 3.10–3.13; take the machine's python3 unless told otherwise.
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3; do command -v $$p >/dev/null && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/saas_portal
PYTEST_ARGS ?=

.PHONY: help run test faults lint format lock clean messages browser services registry

help:
	@echo "make run   - serve the portal with demo data at http://127.0.0.1:8000 (web + worker + scheduler)"
	@echo "make test  - lint and run the whole test suite on PostgreSQL, Redis, Kustomize and Chromium"

$(STAMP): requirements.lock requirements-dev.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else "Python 3.11-3.13 is required")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.lock
	touch $(STAMP)

# checkov (tests/instances/test_checkov.py) lives in a venv of its own: its dependencies clash with the portal's
# pins. The .gitignore inside keeps git and Ruff out of it.
CHECKOV_STAMP := .venv-checkov/.installed
$(CHECKOV_STAMP): requirements-checkov.lock
	$(PYTHON) -m venv .venv-checkov
	echo '*' > .venv-checkov/.gitignore
	.venv-checkov/bin/python -m pip install --quiet --upgrade pip
	.venv-checkov/bin/python -m pip install --quiet -r requirements-checkov.lock
	touch $(CHECKOV_STAMP)

services:
	@bash scripts/services.sh

browser:
	@bash scripts/browser.sh

registry:
	@bash scripts/registry.sh

run: $(STAMP) registry
	@bash scripts/services.sh pg-optional
	DJANGO_DEBUG=1 $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=1 $(PY) manage.py seed_demo
	DJANGO_DEBUG=1 $(PY) manage.py runportal

test: $(STAMP) $(CHECKOV_STAMP) services browser registry
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	DJANGO_DEBUG=1 $(PY) manage.py makemigrations --check --dry-run > /dev/null || { echo "models changed without a migration"; exit 1; }
	DATABASE_URL=$(TEST_DATABASE_URL) $(VENV)/bin/pytest $(PYTEST_ARGS)

faults: $(STAMP) services
	DATABASE_URL=$(TEST_DATABASE_URL) $(VENV)/bin/pytest -m faults $(PYTEST_ARGS) tests/faults tests/instances/test_resume.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

messages: $(STAMP)
	DJANGO_DEBUG=1 $(PY) manage.py makemessages -l fr --no-obsolete --ignore '.venv/*' --ignore 'staticfiles/*'
	DJANGO_DEBUG=1 $(PY) manage.py compilemessages --ignore '.venv/*'

lock: $(STAMP)
	@echo "Edit pyproject.toml, then regenerate the locks in a fresh venv with pip freeze."

clean:
	rm -rf $(VENV) .venv-checkov staticfiles db.sqlite3 .pytest_cache
