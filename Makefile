# mlbatch: `make demo` runs the example batches end to end, `make test` runs the suite.
# Both create .venv and install what they need on first use.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
REQUIREMENTS := pyproject.toml requirements.txt requirements-airflow.txt requirements-worker.txt requirements-test.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQUIREMENTS) | sha256sum | cut -c1-12)
# The project-local Airflow (airflow_home/, SQLite, these dags/ and plugins/, no examples) is
# what the `mlbatch` command sets up by itself, from any folder of the project.

.PHONY: install demo demo-articles test up bench lint clean images compose

# One resolve of all three extras (s3fs pins botocore: separate installs would fight).
install: $(STAMP)
$(STAMP): $(REQUIREMENTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[airflow,worker,test]'
	@rm -f $(VENV)/.installed-* && touch $@

lint: install
	$(BIN)/mlbatch lint

demo: install lint
	$(BIN)/mlbatch demo churn_training churn_scoring

# The GPU example (sentence embeddings of 10,000 articles + recommendations): a few minutes on 2 CPUs
demo-articles: install lint
	$(BIN)/mlbatch demo article_recommendation

test: install
	$(BIN)/python -m pytest

# The debootstrap base and the CPU worker image from Dockerfile.worker, offline (docs/containers.md);
# tagged by what went into them, so a second run builds nothing. Also tags the newest worker
# mlbatch-worker:cpu (the specs' default image), keeps the last 3 content tags (MLBATCH_KEEP_IMAGES)
# and records the tags in .mlbatch/images.env for `mlbatch compose up`
images: install
	$(BIN)/python -m tests.containers.images

# The team's stack (docker-compose.yaml, docs/compose.md): .env written once, the images built
# once, the stack started and healthy; it prints the UI's address and where the admin password is
compose: images
	$(BIN)/mlbatch compose up

# `make up DB=postgres`: the metadata DB on a PostgreSQL cluster of its own (SQLite by default)
up: install
	$(BIN)/mlbatch up $(if $(filter postgres,$(DB)),--postgres)

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf airflow_home artifacts
