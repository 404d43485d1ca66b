# Two commands matter: `make run` (the demo on an embedded PostgreSQL, nothing to install)
# and `make test` (the suite on PostgreSQL and Redis on localhost). The rest helps them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
REQS_HASH := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(REQS_HASH)

.PHONY: run test typecheck install lint fmt clean screenshots

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing Python packages into $(VENV) (first time: ~1 min)…"
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# The database (embedded PostgreSQL unless DATABASE_URL), migrations, demo data, then
# web + Celery worker + Celery beat until Ctrl-C (core/launcher.py).
run: install
	@$(BIN)/python -m core.launcher --port $(PORT)

# Type errors fail the build before the suite starts (CI runs `make test`). The suite runs on
# TEST_WORKERS processes (pytest-xdist; 0 = one process), each with its own database and Redis DB;
# --dist loadgroup keeps a module marked xdist_group on one worker (the Gnocchi peer starts once).
TEST_WORKERS ?= 2
test: typecheck
	DJANGO_SETTINGS_MODULE=billing_site.settings.test $(BIN)/pytest --create-db -q -p no:randomly -n $(TEST_WORKERS) --dist loadgroup --durations=25

# mypy over the modules listed in pyproject.toml ([tool.mypy] files); incremental, cached in .mypy_cache.
typecheck: install
	$(BIN)/mypy

# The docs' images come from the browser tests CI runs (core/tests/browser.py): the same
# tests, on one process, with SCREENSHOTS_DIR=docs/screenshots. Needs PostgreSQL and Redis as
# `make test` does, and Debian's chromium; no demo running.
screenshots: install
	@test -x /usr/bin/chromium || { echo "needs Debian's chromium: apt-get install chromium"; exit 1; }
	DJANGO_SETTINGS_MODULE=billing_site.settings.test SCREENSHOTS_DIR=docs/screenshots \
		$(BIN)/pytest --create-db -q -p no:randomly -n 0 -m browser

lint: install
	$(BIN)/ruff check .

fmt: install
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

# Forget the demo: its database cluster, broker, cache and files (stop `make run` first).
clean:
	rm -rf var/
