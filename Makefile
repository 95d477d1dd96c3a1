# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-long test-compose lint unit bench soak venv clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

run: venv
	$(BIN)/catalytic dev

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Separate sessions: the bus and peer tests restart and wipe Redis, the usage suite flushes the
# platform's Redis on purpose, and the chaos suite kills processes and restarts Redis and Postgres;
# none may run under another suite's platform. The compose suite runs last, when Docker is there or
# can be started (it says plainly when not).
test: lint
	$(BIN)/pytest -q tests/unit tests/integration tests/ops
	$(BIN)/pytest -q tests/usage
	$(BIN)/pytest -q --ignore=tests/unit --ignore=tests/integration --ignore=tests/ops --ignore=tests/usage \
		--ignore=tests/compose --ignore=tests/security --ignore=tests/chaos
	$(BIN)/pytest -q tests/security
	$(BIN)/pytest -q tests/chaos
	infra/compose/test.sh --if-possible

# The security and chaos suites at full size (docs/reliability.md): more events, more fuzzing.
test-long: venv
	CATALYTIC_LONG=1 $(BIN)/pytest -q tests/security
	CATALYTIC_LONG=1 $(BIN)/pytest -q tests/chaos

# compose.yaml for real: images (official, or built offline), up --wait, tests/compose, down.
test-compose: venv
	infra/compose/test.sh

# Every scenario but the soak; starts and stops its own peers and platform (docs/benchmarks.md).
bench: venv
	$(BIN)/catalytic bench

# Mixed traffic at 1,000 req/s through the gateway: errors and RSS growth (`make soak SOAK_SECONDS=60`).
SOAK_SECONDS ?= 600
soak: venv
	SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/catalytic bench soak

clean:
	rm -rf .dev/test .pytest_cache .mypy_cache .ruff_cache
