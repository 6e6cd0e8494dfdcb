# Two commands on a fresh machine: `make serve` and `make test`. Each builds .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
export GITSTORE_DATA ?= $(CURDIR)/data

.PHONY: serve test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	@echo "gitstore: serving $(GITSTORE_DATA) on http://$(HOST):$(PORT)"
	@echo "  OpenAPI docs: http://$(HOST):$(PORT)/docs"
	@echo "  try:          curl -s http://$(HOST):$(PORT)/repos/demo-course/entities | head"
	$(BIN)/uvicorn api.main:app --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check gitstore api tests bench
	$(BIN)/ruff format --check gitstore api tests bench

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data
