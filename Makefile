# unified-seller: one entry point for installing, running and testing everything locally.
SHELL := /bin/bash
.DEFAULT_GOAL := help
empty :=
space := $(empty) $(empty)

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SERVICES := identity regions orders messages billing seller_view listings web
SERVICE_DIRS := $(wildcard $(addprefix services/,$(SERVICES)))
EXAMPLE_DIRS := $(wildcard examples/downstream-consumer)
PKG_FILES := shared/pyproject.toml $(wildcard services/*/pyproject.toml demo/pyproject.toml examples/*/pyproject.toml) requirements-dev.txt constraints.txt
LINT_PATHS := $(wildcard shared services tests bench demo examples deploy contracts) conftest.py
DEPLOY_SCRIPTS := deploy/servicetable.py deploy/images/build.py deploy/k8s/render.py deploy/k8s/local.py
export US_STATE_DIR ?= /var/tmp/unified-seller
export KAFKA_PORT ?= 9092
export KAFKA_CONTROLLER_PORT ?= 9093
export KAFKA_BOOTSTRAP_SERVERS ?= 127.0.0.1:$(KAFKA_PORT)
export PG_PORT ?= 55432
export TEST_PG_ADMIN_DSN ?= postgresql://postgres@127.0.0.1:$(PG_PORT)/postgres

# `make test` runs on a Kafka and a PostgreSQL of its own (state folder and ports below), so that a running
# platform (`make demo`) never consumes the tests' records and its topics hold only its own events.
# TEST_INFRA=shared: run the tests on the infrastructure above instead.
TEST_INFRA ?= own
TEST_STATE_DIR ?= $(US_STATE_DIR)-test
TEST_KAFKA_PORT ?= $(shell echo $$(($(KAFKA_PORT) + 100)))
TEST_KAFKA_CONTROLLER_PORT ?= $(shell echo $$(($(KAFKA_CONTROLLER_PORT) + 100)))
TEST_PG_PORT ?= $(shell echo $$(($(PG_PORT) + 100)))
TEST_KAFKA_HEAP ?= 768m
ifeq ($(TEST_INFRA),own)
TEST_ENV := US_STATE_DIR=$(TEST_STATE_DIR) KAFKA_PORT=$(TEST_KAFKA_PORT) \
	KAFKA_CONTROLLER_PORT=$(TEST_KAFKA_CONTROLLER_PORT) PG_PORT=$(TEST_PG_PORT) \
	KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$(TEST_KAFKA_PORT) \
	TEST_PG_ADMIN_DSN=postgresql://postgres@127.0.0.1:$(TEST_PG_PORT)/postgres \
	KAFKA_LIB_DIR=$(US_STATE_DIR)/kafka/lib-3.9.1 KAFKA_HEAP=$(TEST_KAFKA_HEAP)
else
TEST_ENV :=
endif

.PHONY: images manifests deploy-local deploy-down test-deploy fuzz bench help install infra-up infra-down infra-status topics migrate lint contracts contracts-check test test-fast lock demo down platform-up platform-down platform-status test-infra-up test-infra-down test-run chaos

help:
	@echo "make demo          start everything and drive a realistic seller through it (ONCE=1: stop after the report;"
	@echo "                   SEED=7 DAYS=61 ORDERS_PER_DAY=24)"
	@echo "make down          stop every service and the infrastructure"
	@echo "make test          lint, contract check and every test, on a Kafka and PostgreSQL of its own"
	@echo "                   (state $(TEST_STATE_DIR), Kafka port $(TEST_KAFKA_PORT); TEST_INFRA=shared: the ones below)"
	@echo "make test-infra-down  stop the tests' Kafka and PostgreSQL"
	@echo "make install       Python environment in $(VENV) with every package and tool (pinned)"
	@echo "make infra-up      start Kafka (KRaft) and PostgreSQL locally, create databases and topics"
	@echo "make infra-down    stop them;  make infra-status: what runs; logs in $(US_STATE_DIR)/logs"
	@echo "make migrate       apply every service's SQL migrations"
	@echo "make contracts     regenerate docs/schemas;  make contracts-check: refuse breaking changes"
	@echo "make chaos         the platform under load while PostgreSQL, then Kafka, are stopped (own infrastructure)"
	@echo "make fuzz          schemathesis over every service's OpenAPI, 200 examples per operation (EXAMPLES=n)"
	@echo "make bench         write-path benchmarks beside raw baselines, medians of 3 (ARGS='relay --runs 1');"
	@echo "                   JSON in bench/results/"
	@echo "make images        one OCI image per service (podman, Debian base cached in the state folder)"
	@echo "make manifests     re-render deploy/k8s/production from deploy/services.toml and topics.py"
	@echo "make deploy-local  run the local manifests with podman kube play (DEPLOY_BASE_PORT, default 8000)"
	@echo "make deploy-down   remove them;  make test-deploy: the container tests (images, kube play, testcontainers)"

$(VENV)/.installed: $(PKG_FILES)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt -r requirements-dev.txt -e shared $(addprefix -e ,$(SERVICE_DIRS)) $(if $(wildcard demo/pyproject.toml),-e demo) $(addprefix -e ,$(EXAMPLE_DIRS))
	@touch $@

install: $(VENV)/.installed
	@deploy/chromium.sh >/dev/null

infra-up: install
	deploy/infra.sh up

infra-down:
	deploy/infra.sh down

infra-status:
	deploy/infra.sh status

topics: install
	deploy/infra.sh kafka-setup

migrate: infra-up
	$(PY) -m unified_identity migrate
	$(PY) -m unified_regions migrate
	for r in NA EU FE; do REGION=$$r $(PY) -m unified_orders migrate && REGION=$$r $(PY) -m unified_messages migrate || exit 1; done
	$(PY) -m unified_seller_view migrate
	$(PY) -m unified_billing migrate
	$(PY) -m unified_web migrate
	$(PY) -m unified_listings migrate

demo: infra-up
	deploy/demo.sh $(if $(SEED),--seed $(SEED)) $(if $(DAYS),--days $(DAYS)) $(if $(ORDERS_PER_DAY),--orders-per-day $(ORDERS_PER_DAY)) $(if $(ONCE),--once)

platform-up: infra-up
	deploy/platform.sh up

platform-down:
	deploy/platform.sh down

platform-status:
	deploy/platform.sh status

down:
	deploy/platform.sh down
	deploy/infra.sh down
	-@test ! -d "$(TEST_STATE_DIR)" || $(MAKE) --no-print-directory test-infra-down

lint: install
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	MYPYPATH=deploy:deploy/k8s $(VENV)/bin/mypy $(DEPLOY_SCRIPTS)
	MYPYPATH=$(subst $(space),:,$(strip shared/src $(addsuffix /src,$(SERVICE_DIRS) $(wildcard demo) $(EXAMPLE_DIRS)))) $(VENV)/bin/mypy -p unified_shared $(addprefix -p unified_,$(notdir $(SERVICE_DIRS))) $(if $(wildcard demo),-p unified_demo) $(if $(EXAMPLE_DIRS),-p downstream_consumer)

contracts: install
	$(PY) -m unified_shared.schemas generate --dir docs/schemas
	$(PY) -m unified_shared.asyncapi --dir docs/asyncapi

contracts-check: install
	$(PY) -m unified_shared.schemas check --dir docs/schemas

test:
	$(MAKE) --no-print-directory test-run $(TEST_ENV)

test-run: infra-up lint contracts-check
	$(VENV)/bin/pytest --timeout=600 -p no:cacheprovider

# The chaos test (DESIGN/issue 18): the platform under load on a Kafka and PostgreSQL of its own (state folder
# and ports below) that the test stops and starts; torn down after.
CHAOS_ENV := US_STATE_DIR=$(US_STATE_DIR)-chaos KAFKA_PORT=$(shell echo $$(($(KAFKA_PORT) + 200))) \
	KAFKA_CONTROLLER_PORT=$(shell echo $$(($(KAFKA_CONTROLLER_PORT) + 200))) PG_PORT=$(shell echo $$(($(PG_PORT) + 200))) \
	KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$(shell echo $$(($(KAFKA_PORT) + 200))) \
	TEST_PG_ADMIN_DSN=postgresql://postgres@127.0.0.1:$(shell echo $$(($(PG_PORT) + 200)))/postgres \
	E2E_BASE_PORT=$(shell echo $$(($${E2E_BASE_PORT:-18000} + 50))) \
	KAFKA_LIB_DIR=$(US_STATE_DIR)/kafka/lib-3.9.1 KAFKA_HEAP=$(TEST_KAFKA_HEAP) CHAOS=1

chaos: install
	$(CHAOS_ENV) deploy/infra.sh wipe >/dev/null 2>&1 || true
	set -o pipefail; trap '$(CHAOS_ENV) deploy/infra.sh down >/dev/null 2>&1 || true' EXIT; \
	$(MAKE) --no-print-directory infra-up $(CHAOS_ENV) && \
	$(CHAOS_ENV) $(VENV)/bin/pytest --timeout=900 -p no:cacheprovider -q -s tests/test_chaos.py

# The bounded run is part of `make test` (tests/test_fuzz.py, 8 examples per operation); this is the long one.
fuzz: infra-up
	FUZZ_MAX_EXAMPLES=$(or $(EXAMPLES),200) FUZZ_PHASES=coverage,fuzzing,stateful \
		$(VENV)/bin/pytest --timeout=7200 -p no:cacheprovider -q tests/test_fuzz.py

bench: infra-up
	$(PY) -m bench $(ARGS)

# Selected tests (ARGS=...) on the tests' infrastructure, started if needed.
test-fast: install
	$(MAKE) --no-print-directory infra-up $(TEST_ENV)
	$(TEST_ENV) $(VENV)/bin/pytest --timeout=600 -x -q $(ARGS)

test-infra-up: install
	$(MAKE) --no-print-directory infra-up $(TEST_ENV)

test-infra-down:
	$(TEST_ENV) deploy/infra.sh down

lock: install
	$(PIP) freeze --exclude-editable | grep -v '^-e' > constraints.txt

# --- images and deployment (deploy/services.toml is the per-service table) --------------------------------
images: install
	deploy/images/tools.sh
	$(PY) deploy/images/build.py $(SERVICES_ONLY)

manifests: install
	$(PY) deploy/k8s/render.py production

deploy-local: infra-up images
	$(PY) deploy/k8s/local.py up

deploy-down:
	$(PY) deploy/k8s/local.py down

# The container tests: the demo story against the images under podman kube play, and the shared library's
# integration tests against Kafka and PostgreSQL started by testcontainers through podman's Docker API.
test-deploy: infra-up images
	$(VENV)/bin/pytest --timeout=900 -p no:cacheprovider -m containers tests/test_deploy_local.py
	deploy/images/testcontainers.sh $(VENV)/bin/pytest --timeout=900 -p no:cacheprovider -x -q shared/tests
