# mlbatch: `make demo` runs the example batches end to end, `make test` runs the suite.
# Both create .venv and install what they need on first use.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-worker.txt | sha256sum | cut -c1-12)

# A project-local Airflow: SQLite metadata DB, these dags/ and plugins/, no examples.
export AIRFLOW_HOME ?= $(CURDIR)/airflow_home
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)
export MLBATCH_ARTIFACTS ?= $(CURDIR)/artifacts
LOCAL_VCPU := $(shell nproc)

.PHONY: install demo demo-articles test up bench lint airflow-init clean images

install: $(STAMP)
$(STAMP): requirements.txt requirements-worker.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

airflow-init: install
	@mkdir -p $(AIRFLOW_HOME)
	@$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/db-migrate.log; exit 1)
	@$(BIN)/airflow pools set mlbatch_local $(LOCAL_VCPU) "local mlbatch workers (one slot per CPU)" > /dev/null

lint: install
	$(BIN)/python -m mlbatch lint

demo: airflow-init lint
	$(BIN)/python -m mlbatch demo churn_training churn_scoring

# The GPU example (sentence embeddings of 10,000 articles + recommendations): a few minutes on 2 CPUs
demo-articles: airflow-init lint
	$(BIN)/python -m mlbatch demo article_recommendation

test: install
	$(BIN)/python -m pytest

# The debootstrap base and the CPU worker image from Dockerfile.worker, offline (docs/containers.md);
# tagged by what went into them, so a second run builds nothing
images: install
	$(BIN)/python -m tests.containers.images

# `make up DB=postgres`: the metadata DB on a PostgreSQL cluster of its own (SQLite by default)
up: airflow-init
	$(BIN)/python -m mlbatch up $(if $(filter postgres,$(DB)),--postgres)

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(AIRFLOW_HOME) artifacts
