"""`evopt`: the command line.

Thin over the library: each command builds a :class:`Context`, calls the client, prints a
table or JSON. Every failure becomes one line on stderr and a documented exit code
(0 ok, 1 invalid config or input, 2 usage, 3 authentication, 4 cloud), never a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from optimizer.cli.args import LOG_LEVELS, build_parser
from optimizer.cli.args.lazy import resolve

if TYPE_CHECKING:
    import argparse

    from optimizer.cli.context import Context

__all__ = ["build_parser", "main", "setup_logging"]

EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70
ENV_LOG_LEVEL = "EVOPT_LOG_LEVEL"
EVOPT_HANDLER = "evopt-stderr"

Handler = Callable[["Context"], Coroutine[Any, Any, int]]


def setup_logging(level: str | None) -> None:
    """Logs go to stderr; without timestamps under journald, which adds its own."""
    from optimizer.logsafe import RedactingFormatter  # noqa: PLC0415 - after parsing

    chosen = (level or os.environ.get(ENV_LOG_LEVEL) or "warning").lower()
    if chosen not in LOG_LEVELS:
        chosen = "warning"
    handler = logging.StreamHandler(sys.stderr)
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("JOURNAL_STREAM"):
        fmt = "%(asctime)s " + fmt
    handler.setFormatter(RedactingFormatter(fmt))
    handler.set_name(EVOPT_HANDLER)
    root = logging.getLogger()
    # Replace only our own handler: a second `main()` in one process (tests, the demo) must
    # not stack handlers, and handlers others installed (pytest's capture) stay.
    for old in [h for h in root.handlers if h.get_name() == EVOPT_HANDLER]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(chosen.upper())


@cache
def _parser() -> argparse.ArgumentParser:
    """The parser, built once per process: building it costs 20 ms (some sixty subparsers each
    copying the common options), which a process that runs several commands (the tests: 20 s
    of the suite's CPU, the demo) paid again each time. Parsing leaves it as it was."""
    return build_parser()


def _error(message: str) -> None:
    sys.stderr.write(f"evopt: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, then import what the command needs: `--help`, `--version` and usage errors
    exit inside ``parse_args`` having imported only the parser (optimizer/cli/args)."""
    args = _parser().parse_args(argv)
    # Imported after parsing, on purpose: config, the client and their errors cost pydantic,
    # aiohttp and YAML (issue 16).
    import asyncio  # noqa: PLC0415

    from optimizer.cli.context import Context, pick_site  # noqa: PLC0415
    from optimizer.config import Config, find_config  # noqa: PLC0415
    from optimizer.enlighten.errors import EXIT_INVALID, EnlightenError  # noqa: PLC0415
    from optimizer.yamlpos import YamlFileError  # noqa: PLC0415

    setup_logging(args.log_level)
    try:
        loads_config = getattr(args, "loads_config", True)
        config = find_config(args.config) if loads_config else Config()
        chosen = getattr(args, "site", None)
        config = pick_site(config, chosen, all_sites=getattr(args, "all_sites", False))
        ctx = Context(config=config, args=args)
        handler: Handler = resolve(args.handler)
        return asyncio.run(handler(ctx))
    except YamlFileError as err:
        for problem in err.problems:
            sys.stderr.write(f"{problem}\n")
        return EXIT_INVALID
    except EnlightenError as err:
        _error(err.user_message())
        return err.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `evopt log --csv | head`: the reader left; not an error. Point stdout at devnull so
        # the interpreter's final flush does not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # the last line of defence: one line, not a traceback
        logging.getLogger(__name__).debug("internal error", exc_info=True)
        _error(
            f"internal error: {type(err).__name__}: {err} "
            "(run with --log-level debug for details and please report it)"
        )
        return EXIT_INTERNAL
