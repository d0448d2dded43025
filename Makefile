# Every target that needs the project calls `install` first, so a fresh clone needs nothing but
# Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint unit bench scale scale-quick surplus surplus-quick soak schema clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

demo: install
	$(BIN)/python -m optimizer.demo

lint: install
	$(BIN)/ruff check optimizer tests benchmarks
	$(BIN)/ruff format --check optimizer tests benchmarks
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

test: lint unit

bench: install
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/forecast.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/surplus.py
	$(BIN)/python benchmarks/planner_solve.py

# The one-minute replay alone (docs/surplus.md): its speed and the gateway against the cloud's
# buckets on the sample year and on recorded fake-site days; `surplus-quick` replays June only.
surplus: install
	$(BIN)/python benchmarks/surplus.py

surplus-quick: install
	$(BIN)/python benchmarks/surplus.py --quick

# The scale benchmark alone (docs/scale.md): 1, 10, 100 and 500 chargers; `scale-quick` stops
# at 100 chargers (about a minute).
scale: install
	$(BIN)/python benchmarks/scale.py

scale-quick: install
	$(BIN)/python benchmarks/scale.py --quick

# The long reliability run: the fault soak on five seeds of 50,000 ticks each (18 simulated days
# of polling per seed), then on a two-site fleet (two accounts, two chargers each) on three
# seeds of 20,000 polls (a week), and the SIGKILL crash tests on more seeds than `make test`.
soak: install
	$(BIN)/python -m tests.soak --ticks 50000 --seeds 1 2 3 4 5
	$(BIN)/python -m tests.soak --sites 2 --ticks 20000 --seeds 1 2 3
	EVOPT_CRASH_SEEDS=30 $(BIN)/pytest -q tests/test_crash_safety.py

# The JSON Schema editors use for rules/*.yaml; a test fails when it is out of date.
schema: install
	$(BIN)/evopt schema > docs/rules.schema.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
