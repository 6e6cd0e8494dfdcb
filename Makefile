# Two commands on a fresh machine: `make serve` and `make test`. Each builds .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
export GITSTORE_DATA ?= $(CURDIR)/data

.PHONY: serve test chromium lint typecheck check bench fuzz load scale relay-soak crash cluster-bench failover-soak replicas-bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The demo token (admin everywhere) is kept in $(GITSTORE_DATA)/demo-token; live content is
# readable without one, as on a public site.
serve: $(STAMP)
	@mkdir -p "$(GITSTORE_DATA)"
	@$(BIN)/gitstore token demo > /dev/null
	@echo "gitstore: serving $(GITSTORE_DATA) on http://$(HOST):$(PORT)"
	@echo "  demo token:   $$(cat "$(GITSTORE_DATA)/demo-token")   (admin on every repository)"
	@echo "  OpenAPI docs: http://$(HOST):$(PORT)/docs"
	@echo "  try:          TOKEN=\$$(cat '$(GITSTORE_DATA)/demo-token')"
	@echo "                curl -s -H \"Authorization: Bearer \$$TOKEN\" 'http://$(HOST):$(PORT)/repos/demo-course/entities?state=draft' | head"
	GITSTORE_ANONYMOUS=read $(BIN)/gitstore serve --host $(HOST) --port $(PORT)

# The web app's browser tests drive Debian's Chromium (tests/ui); nothing is downloaded at test time.
# Two workers, a test file each at a time (a file's tests share its fixtures): the cluster, relay
# and kill tests spend most of their time waiting on servers, so two cores took 469-505 s where
# one took 842 s. schemathesis' generated cases report nothing from an xdist worker (63 of
# tests/properties' 106 went uncounted), so those run first, in one process.
# TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
ifeq ($(TEST_WORKERS),0)
test: $(STAMP) chromium
	$(BIN)/pytest
else
test: $(STAMP) chromium
	$(BIN)/pytest tests/properties
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --ignore=tests/properties
endif

chromium:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

lint: $(STAMP)
	$(BIN)/ruff check gitstore api tests bench
	$(BIN)/ruff format --check gitstore api tests bench

# mypy, strict, over gitstore and api ([tool.mypy] in pyproject.toml says which files and how).
typecheck: $(STAMP)
	$(BIN)/mypy

# What CI checks before the tests: lint and types.
check: lint typecheck

bench: $(STAMP)
	$(BIN)/python -m bench

# The journal's kill -9 and power-cut loops at length (ADR 0014; the suite runs 4 rounds each).
crash: $(STAMP)
	GITSTORE_KILL_RUNS=40 $(BIN)/pytest -q -p no:randomly tests/reliability/test_kill_during_journal.py -s

# The property and schemathesis tests with many more examples, random each run (a few minutes);
# failures are kept in .hypothesis/ and tried first next time.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/properties -o timeout=900

# The real server (2 workers) under wrk on loopback: req/s and latency against the issue's
# targets, then a check that no acknowledged write was lost (about two minutes; needs wrk).
load: $(STAMP)
	$(BIN)/python -m bench.load

# One repository grown to 100,000 entities and 1,000,000 versions in bulk: read, write, publish,
# list and history latency at 1k, 10k and 100k against issue 8's 1.5x target (about 20 minutes
# and 4 GB of disk; `python -m bench.scale --quick` is a two-minute smoke run).
scale: $(STAMP)
	$(BIN)/python -m bench.scale

# The relay's fault tests at length against a real RabbitMQ: five kill -9s of the server and
# five broker restarts mid-stream instead of one each (several minutes).
relay-soak: $(STAMP)
	GITSTORE_RELAY_SOAK=5 $(BIN)/pytest tests/relay/test_rabbitmq.py -p no:randomly -o timeout=3600

# Cluster mode (issue 23) on loopback: its own PostgreSQL and gitstore nodes; forwarding's added
# latency (live GET, PUT) against asking the owner and against a redirect, write throughput of
# one node and of three (per node), and the move pause (a few minutes; needs PostgreSQL 15).
cluster-bench: $(STAMP)
	$(BIN)/python -m bench.cluster

# Failover at length (issue 24, ADR 0016): 10 kill -9s of a repository's owner under four writers
# instead of the suite's 2, every acknowledged ETag checked on the new owner and its replica.
failover-soak: $(STAMP)
	GITSTORE_FAILOVER_ROUNDS=10 $(BIN)/pytest -q -p no:randomly tests/cluster/test_failover.py -s -o timeout=1800

# Replication's cost and failover's speed (issue 24): PUT and publish throughput and p99 with
# replication factor 2 against 1 in one run, failover time p50/max over kills, replica lag.
replicas-bench: $(STAMP)
	$(BIN)/python -m bench.replicas

clean:
	rm -rf $(VENV) data
