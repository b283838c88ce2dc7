# Two commands matter: `make run` (the demo) and `make test` (the suite). See README.md.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run install install-dev test lint bench faults migrate clean

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

migrate: install
	$(PY) manage.py migrate --noinput

# Web server + the three task queues (stamp, deliver, bulk: one cluster each, one worker each; see
# docs/operations.md); Ctrl-C stops them all. The trap signals the jobs themselves, not the whole group: a
# cluster's sentinel killed outright by a group-wide SIGTERM can leave its parent waiting forever.
# The demo lets webhooks reach a receiver on this machine or its network (WEBHOOK_ALLOW_PRIVATE=0 make run to
# refuse them, as production does by default).
run: export WEBHOOK_ALLOW_PRIVATE ?= 1
# The links the demo prints and emails (the receipt's QR, the invoice's downloads) follow the port it runs on,
# unless PUBLIC_BASE_URL is set.
run: export PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
run: migrate
	$(PY) manage.py load_sat_catalogs
	$(PY) manage.py seed_demo --if-empty
	@echo ""
	@echo "  Portal:         http://$(HOST):$(PORT)/demo/"
	@echo "  Administración: http://$(HOST):$(PORT)/admin/"
	@echo "  API (docs):     http://$(HOST):$(PORT)/api/docs/"
	@echo "  Salud:          http://$(HOST):$(PORT)/healthz"
	@echo "  Enlaces en tickets y correos: $(PUBLIC_BASE_URL)"
	@echo "  Webhooks a direcciones privadas: $(if $(filter 1 true yes on,$(WEBHOOK_ALLOW_PRIVATE)),permitidos (demo),rechazados)"
	@echo ""
	@trap 'kill $$(jobs -p) 2>/dev/null' INT TERM; \
	$(PY) manage.py qcluster --queue stamp & \
	$(PY) manage.py qcluster --queue deliver & \
	$(PY) manage.py qcluster --queue bulk & \
	$(PY) manage.py runserver $(HOST):$(PORT) --noreload & \
	wait

test: install-dev
	$(VENV)/bin/pytest

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run

bench: install-dev
	@for f in bench/*.py; do [ "$$f" = bench/faults.py ] && continue; echo "== $$f"; $(PY) $$f || exit 1; done

# Reliability suite: its own PostgreSQL, Redis, gunicorn and workers; faults injected one after another; one
# JSON object on stdout (docs/operations.md). FAULTS_ARGS=--quick for a shorter run.
faults: install-dev
	$(PY) bench/faults.py $(FAULTS_ARGS)

clean:
	rm -rf var/db.sqlite3* var/media
