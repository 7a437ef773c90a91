# The user interface of the stack. `make help` lists every target.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STACK := $(PYTHON) -m stack

.DEFAULT_GOAL := help
.PHONY: help bootstrap install up down clean status failover switchover rebuild-node compose-failover compose-switchover compose-up compose-down compose-clean test-compose compose-chaos repl-status test test-unit test-integration lint diagrams seed stage bench bench-queue bench-push screenshots bench-semisync loadtest loadtest-queue chaos profile key keys revoke breaker

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

bootstrap:
	@command -v $(PYTHON) >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 python3-venv; }

install: bootstrap ## Install what is missing: Debian packages and the pinned Python venv
	@$(STACK) install

up: bootstrap ## Install what is missing, start the whole stack, wait until ready, print where things are
	@$(STACK) up

down: bootstrap ## Stop every process of the stack (data is kept)
	@$(STACK) down

clean: bootstrap ## Stop the stack and remove all of its state (.stack/)
	@$(STACK) clean

compose-up: bootstrap ## The same stack as containers: engine (installed if none), images, up, where things are
	@$(STACK) compose-up

compose-down: bootstrap ## Stop the compose stack (volumes kept), and the engine if compose-up started it
	@$(STACK) compose-down

compose-clean: bootstrap ## Stop the compose stack and remove its volumes
	@$(STACK) compose-clean

compose-failover: bootstrap ## make failover on the compose stack (its mysql-failover one-shot)
	@$(STACK) compose-failover

compose-switchover: bootstrap ## make switchover on the compose stack (TO=mysql-primary:3306|mysql-replica:3306)
	@MYSQL_SWITCHOVER_TO=$(TO) $(STACK) compose-switchover

status: bootstrap ## Show each process and the replication state
	@$(STACK) status

repl-status: bootstrap ## For each replica: IO/SQL threads, GTID positions, seconds behind
	@$(STACK) repl-status

failover: bootstrap ## The primary is lost: promote the most advanced replica, repoint the rest, fence the old one
	@$(STACK) failover

switchover: bootstrap ## Planned change of primary (TO=host:port, default the most advanced replica); the old one ends a replica
	@MYSQL_SWITCHOVER_TO=$(TO) $(STACK) switchover

rebuild-node: bootstrap ## Rebuild a node that setup refused (NODE=host:port) from a copy of the primary, then replicate
	@NODE=$(NODE) $(STACK) rebuild-node

lint: install ## ruff, mypy and shellcheck
	$(VENV)/bin/ruff check backend stack loadtest
	$(VENV)/bin/ruff format --check backend stack loadtest
	$(VENV)/bin/mypy backend/app backend/tools backend/tests stack loadtest
	shellcheck -x mysql/*.sh nginx/*.sh redis/*.sh .ci/run

test-unit: install ## Unit tests only: the API's, the launcher's, the load tools' (no servers, seconds)
	$(VENV)/bin/pytest -m "not integration" backend/tests/unit stack/tests loadtest/tests

test-integration: install ## Integration tests against a test stack of their own (own ports and state dir)
	$(VENV)/bin/pytest -m integration backend/tests/integration

test-compose: install ## docker compose end to end on a real engine (own project, ports and volumes)
	$(VENV)/bin/pytest -m compose backend/tests/compose

test: install lint ## Every test: lint, unit tests, integration tests on a native stack of their own, compose end to end
	$(VENV)/bin/pytest backend/tests/unit stack/tests loadtest/tests backend/tests/integration backend/tests/compose

loadtest: install ## Locust against the running stack (LOADTEST_USERS, LOADTEST_DURATION, LOAD_SHAPE=step|spike|dau-peak)
	$(VENV)/bin/python -m loadtest.run

loadtest-queue: install ## A write burst past what the queue's workers apply: backlog building and draining -> imgs/queue-spike.png, docs/messaging.md
	$(VENV)/bin/python -m loadtest.queue_spike

chaos: install ## Faults one at a time under load on a stack of its own -> docs/reliability.md
	$(VENV)/bin/python -m loadtest.chaos

bench: install ## The staircase: stage 1 (one server) to 4 (full stack), floors, ratios -> docs/benchmarks.md
	$(VENV)/bin/python -m loadtest.bench

bench-queue: install ## NATS ack levels (core, R1, R3): throughput, publish latency, acked messages lost with the leader killed -> docs/benchmarks.md
	$(VENV)/bin/python -m loadtest.bench_queue

bench-push: install ## Live push: streams one push process holds, commit-to-client p50/p99, memory per stream -> docs/benchmarks.md
	$(VENV)/bin/python -m loadtest.bench_push

screenshots: install ## The live page in headless chromium, against the running stack -> imgs/live-page.png
	$(VENV)/bin/python -m loadtest.live_screenshot

bench-semisync: install ## Writes only, semi-sync off and on in interleaved rounds: what a commit pays -> docs/benchmarks.md
	$(VENV)/bin/python -m loadtest.semisync

compose-chaos: install ## The compose faults under load on a compose project of its own -> docs/reliability.md
	$(VENV)/bin/python -m loadtest.chaos.compose

profile: install ## Python calls and µs per request inside the API (in-process, against the running stack)
	PYTHONPATH=backend:. $(VENV)/bin/python -m tools.hotpath

key: install ## Create an API key: TIER=critical|standard NAME=who (printed once)
	@$(STACK) app keys create --tier $(or $(TIER),standard) --name "$(or $(NAME),$(USER),cli)"

keys: install ## List API keys (ids, tiers, state; never secrets)
	@$(STACK) app keys list

revoke: install ## Revoke an API key: KEY=<key id>
	@$(STACK) app keys revoke "$(KEY)"

breaker: install ## Override a circuit breaker: NAME=primary|replica-N|redis STATE=open|closed|auto (none: list)
	@if [ -n "$(NAME)" ]; then $(STACK) app breaker force "$(NAME)" "$(or $(STATE),auto)"; \
	else $(STACK) app breaker list; fi

stage: bootstrap ## The stack as step N of the chapter: make stage N=1..5 (docs/tutorial.md); make up returns to the full stack
	@STAGE=$(N) $(STACK) stage

seed: bootstrap ## Bulk-load USERS users (default 100000; try USERS=1000000) and wait for the replicas
	@SEED_USERS=$(or $(USERS),100000) $(STACK) seed

diagrams: install ## Write the request-path and processes diagrams from the source, render docs/diagrams/*.dot into imgs/*.png (Graphviz)
	@PYTHONPATH=backend:. $(VENV)/bin/python -m tools.request_path
	@PYTHONPATH=backend:. $(VENV)/bin/python -m tools.process_map
	@command -v dot >/dev/null || { apt-get update -qq && apt-get install -y -qq graphviz >/dev/null; }
	@for src in docs/diagrams/*.dot; do \
	  out=imgs/$$(basename "$${src%.dot}").png; dot -Tpng -Gdpi=110 "$$src" -o "$$out" && echo "$$out"; \
	done
