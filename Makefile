# Two commands matter: `make run` (demo on SQLite, nothing to install) and `make test`
# (the suite on real PostgreSQL and Redis). Everything else is a helper of theirs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
REQS_HASH := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(REQS_HASH)

.PHONY: run test typecheck install migrate seed lint fmt clean screenshots

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

migrate: install
	@mkdir -p var
	$(BIN)/python manage.py migrate --noinput -v0

seed: migrate
	$(BIN)/python manage.py seed_demo

run: seed
	$(BIN)/python manage.py collectstatic --noinput -v0
	@PORT=$(PORT) $(BIN)/python manage.py demo_banner
	@CLOUDBILL_PORT=$(PORT) $(BIN)/honcho -f Procfile.dev start

# Type errors fail the build before the suite starts (CI runs `make test`).
test: typecheck
	DJANGO_SETTINGS_MODULE=billing_site.settings.test $(BIN)/pytest --create-db -q -p no:randomly

# mypy over the modules listed in pyproject.toml ([tool.mypy] files); incremental, cached in .mypy_cache.
typecheck: install
	$(BIN)/mypy

# Against a running demo (`make run` in another terminal; a fresh one for the money loop).
screenshots: install
	$(BIN)/python -m pip install -q -r requirements-screenshots.txt
	@test -x /usr/bin/chromium || { echo "needs Debian's chromium: apt-get install chromium"; exit 1; }
	$(BIN)/python docs/screenshots/take.py http://127.0.0.1:$(PORT)
	$(BIN)/python docs/screenshots/money_loop.py http://127.0.0.1:$(PORT)

lint: install
	$(BIN)/ruff check .

fmt: install
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	rm -rf var/cloudbill.sqlite3* var/broker var/cache var/celerybeat-schedule*
