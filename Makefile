# Two commands for a new machine:  make demo   and   make test
VENV   ?= .venv
PY     := $(VENV)/bin/python
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 180
export PYTHONPATH := $(CURDIR)

.PHONY: setup services test demo sync clean

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

setup: $(VENV)/.installed

services:
	bash scripts/services.sh

## make test: install, start MariaDB + PostgreSQL, run every test
test: setup services
	$(PY) -m pytest -q -p no:cacheprovider

## make demo: demo Khanza DB + SQLite website store with sample registrations, one sync run, results
demo: setup services
	$(PY) scripts/demo.py

## make sync: one run against the configured databases (.env)
sync: setup
	$(PY) -m flows.sync_registrations

clean:
	rm -rf $(VENV) data/*.db
