# The two commands of the README: `make run` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: setup run test lint proto bench clean

# A virtual environment with the project and its test and lint tools, rebuilt when
# pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# The service on the embedded default (SQLite task store, local file store, demo
# datasource); the Slack bot too when SLACK_BOT_TOKEN is set.
run: setup
	VENV=$(VENV) scripts/run

# Every test: unit, real gRPC server, PostgreSQL, MariaDB, S3 (moto server), Slack stand-in.
test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy service bot

proto: setup
	$(PY) scripts/gen_proto.py

clean:
	rm -rf $(VENV) .woxqaq .pytest_cache .ruff_cache .mypy_cache
