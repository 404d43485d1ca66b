# Two commands matter: `make run` (demo on SQLite, nothing to install) and `make test`
# (the suite on real PostgreSQL and Redis). Everything else is a helper of theirs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
REQS_HASH := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(REQS_HASH)

.PHONY: run test install migrate seed lint fmt clean

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

test: install
	DJANGO_SETTINGS_MODULE=billing_site.settings.test $(BIN)/pytest --create-db -q -p no:randomly

lint: install
	$(BIN)/ruff check .

fmt: install
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	rm -rf var/cloudbill.sqlite3* var/broker var/cache var/celerybeat-schedule*
