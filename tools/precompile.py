"""Compile to bytecode what the project runs, once, at install.

pip compiles every file it installs: about 6,500, a third of them the libraries' own test
suites, which nothing here imports: 15-20 s of CPU at the head of a fresh clone's `make test`
(issue 16: under 3 minutes), before lint and the tests can start. `make install` passes
``--no-compile``, and `make test` and `make demo` run this instead (once, the step
``.venv/.precompiled``; in `make test` beside mypy, not before it): importing every module of
the project, and the test tools when they are installed, writes the bytecode of the 800-odd
modules a run uses (about 5 s); any other module compiles on its first import. The Makefile clears
``PYTHONDONTWRITEBYTECODE`` for it, or nothing would be written.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import optimizer

TOOLS = ("pytest", "xdist", "hypothesis", "aioresponses", "amqtt.broker", "matplotlib.pyplot")


def main() -> int:
    if sys.dont_write_bytecode:
        print("precompile: PYTHONDONTWRITEBYTECODE is set, nothing would be written")
        return 1
    for info in pkgutil.walk_packages(optimizer.__path__, prefix="optimizer."):
        if not info.name.endswith("__main__"):  # these run the program when imported
            importlib.import_module(info.name)
    for name in TOOLS:
        try:
            importlib.import_module(name)
        except ImportError:  # a user's install without the test extras
            continue
    return 0


if __name__ == "__main__":
    sys.exit(main())
