# Every target that needs the project calls `install` first, so a fresh clone needs nothing but
# Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint unit bench planner learned scale scale-quick surplus surplus-quick soak schema clean

install: $(STAMP)

# The packages go in with uv (itself installed by pip into the venv, so nothing is needed
# beforehand): 5 s where pip took 18 s of a fresh clone's `make test` (same versions, checked
# with `pip freeze`). Nothing is compiled at install (`--no-compile`, uv's default): each module
# is compiled on its first import and its cache written then (docs/performance.md, "Bytecode").
# uv reads no pip.conf: where it cannot install (no wheel for the platform, an index only pip
# is told of), pip does it as before.
# The venv is made without pip (ensurepip's copy of pip cost 4 s of CPU and 9 s of a fresh
# clone's wall clock): the Python's own pip puts uv into it (`pip --python`, pip 22.3 and
# later); without one, ensurepip does as before. `.venv/bin/uv pip install X` adds a package.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv --without-pip $(VENV)
	( ( $(PYTHON) -m pip --python $(BIN)/python install --quiet --no-compile uv 2>/dev/null \
	    || ( $(BIN)/python -m ensurepip --default-pip >/dev/null \
	      && $(BIN)/python -m pip install --quiet --no-compile uv ) ) \
	  && $(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[test,lint]' ) \
	|| ( ( $(BIN)/python -m pip --version >/dev/null 2>&1 \
	      || $(BIN)/python -m ensurepip --default-pip >/dev/null ) \
	  && $(BIN)/python -m pip install --quiet --no-compile --upgrade pip \
	  && $(BIN)/python -m pip install --quiet --no-compile -e '.[test,lint]' )
	touch $(STAMP)

demo: install
	$(BIN)/python -m optimizer.demo

lint: install
	$(NICE) $(BIN)/ruff check optimizer tests benchmarks
	$(NICE) $(BIN)/ruff format --check optimizer tests benchmarks
	$(NICE) $(BIN)/mypy

# Tests run on every core (pytest-xdist; each test has its own tmp dir, port and state), and
# the ten slowest are listed at the end. One file: `.venv/bin/pytest tests/test_x.py`.
PYTEST_WORKERS ?= auto
LINT_NICE := $(shell command -v nice >/dev/null 2>&1 && echo nice -n 19)

# The suite starts Python many times (each worker, the `evopt` and service subprocesses, and
# tests/test_imports.py re-importing every module): with PYTHONDONTWRITEBYTECODE set (some shells
# and containers set it) each one compiled the whole project again, 40% of test_imports' CPU.
# An empty value is "unset" to Python; the caches go to the ignored __pycache__ dirs.
unit test soak: export PYTHONDONTWRITEBYTECODE :=

unit: install
	$(BIN)/pytest -n $(PYTEST_WORKERS) --durations=10

# Lint and the tests at once: mypy's cold start (a fresh clone has no cache) overlaps the tests
# instead of preceding them, at the lowest priority (`nice`, where there is one): its 15 s of
# CPU then runs while a test waits for a process or a timer (about 40 s of the workers' time)
# rather than beside a busy worker. Make waits for both and fails if either fails; each one's
# output is printed whole when it ends (--output-sync).
test: install
	$(MAKE) --no-print-directory -j2 --output-sync=target NICE="$(LINT_NICE)" lint unit

bench: install
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/forecast.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/surplus.py
	$(BIN)/python benchmarks/planner.py
	$(BIN)/python benchmarks/planner_solve.py
	$(BIN)/python benchmarks/planner_solve.py --method dp
	$(BIN)/python benchmarks/daemon.py

# Issue 15's Done-when figures alone (docs/simulation.md): the example setup's rules replayed on
# the three bundled histories with exact and learned plans, each figure beside its bar.
# RULES="rules/a.yaml rules/b.yaml" replays those files instead.
planner: install
	$(BIN)/python benchmarks/planner.py $(if $(RULES),--rules $(RULES))

# Where `--plans learned` leaves energy unmet, by cause (docs/simulation.md, "Departure plans").
learned: install
	$(BIN)/python benchmarks/learned.py

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
# seeds of 20,000 polls (a week), one site with the MQTT bridge on and its broker dropping now
# and then (docs/home-assistant.md), the SIGKILL crash tests on more seeds than `make test`, and
# last the long versions of tests that `make test` runs short (marked soak) with every
# hypothesis property at ten times its examples (tests/profiles.py).
soak: install
	$(BIN)/python -m tests.soak --ticks 50000 --seeds 1 2 3 4 5
	$(BIN)/python -m tests.soak --sites 2 --ticks 20000 --seeds 1 2 3
	$(BIN)/python -m tests.soak --mqtt --ticks 20000 --seeds 1 2
	EVOPT_CRASH_SEEDS=30 $(BIN)/pytest -q tests/test_crash_safety.py
	$(BIN)/pytest -n $(PYTEST_WORKERS) -m "soak or hypothesis" --hypothesis-profile soak

# The JSON Schema editors use for rules/*.yaml; a test fails when it is out of date.
schema: install
	$(BIN)/evopt schema > docs/rules.schema.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
