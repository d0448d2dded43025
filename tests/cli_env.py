"""A harness for running `evopt` in-process against the fake cloud in a thread."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from optimizer.cli import main
from optimizer.enlighten import ratelimit
from optimizer.enlighten.client import EnlightenClient
from optimizer.fakecloud import FakeCloud, run_in_thread

EMAIL = "owner@example.com"
PASSWORD = "correct-horse-battery"
SITE_ID = 1234567
STATUS_KEYS = {
    "sn",
    "name",
    "connected",
    "plugged_in",
    "charging",
    "faulted",
    "connector_status",
    "dlb_active",
    "session_kwh",
    "mode",
}


class CliRunner:
    """`evopt` in-process with a config; what it printed, captured. Mixed into harnesses."""

    config: Path
    capsys: pytest.CaptureFixture[str]

    def run(self, *args: str) -> tuple[int, str, str]:
        # Each `evopt` is a process of its own in real use, with its own request budget: a
        # limiter a cycle kept alive from the last command (until the GC runs) would make a
        # long run of commands wait on one real-time budget (optimizer/enlighten/ratelimit.py).
        for key in [k for k in ratelimit._LIMITERS if k[2] is None]:
            ratelimit._LIMITERS.pop(key, None)
        code = main(["--config", str(self.config), *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *args: str) -> Any:
        code, out, err = self.run(*args, "--json")
        assert code == 0, err
        return json.loads(out)


@dataclass
class Env(CliRunner):
    cloud: FakeCloud
    base_url: str
    config: Path
    state_dir: Path
    capsys: pytest.CaptureFixture[str]

    def logins(self) -> int:
        return len(self.cloud.requests("/login/login.json", method="POST"))


def owner_client(base_url: str, tmp_path: Path, **kwargs: Any) -> EnlightenClient:
    """A client of the fake cloud's demo account, its session kept in ``tmp_path``."""
    return EnlightenClient(
        base_url=base_url,
        email=EMAIL,
        password_provider=lambda: PASSWORD,
        state_dir=tmp_path / "state",
        **kwargs,
    )


def write_config(path: Path, base_url: str, state_dir: Path, **enlighten: Any) -> Path:
    lines = ["enlighten:", f"  base_url: {base_url}", f"  email: {EMAIL}"]
    lines += [f"  {key}: {value}" for key, value in enlighten.items()]
    lines += ["service:", f"  state_dir: {state_dir}", "site:", "  timezone: Australia/Melbourne"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_env(
    cloud: FakeCloud,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    **enlighten: Any,
) -> Iterator[Env]:
    """Start ``cloud``, write a config for it (``enlighten`` adds keys), set the password."""
    monkeypatch.setenv("ENLIGHTEN_PASSWORD", PASSWORD)
    monkeypatch.delenv("ENLIGHTEN_EMAIL", raising=False)
    monkeypatch.delenv("EVOPT_CONFIG", raising=False)
    with run_in_thread(cloud) as base_url:
        state_dir = tmp_path / "state"
        config = write_config(tmp_path / "config.yaml", base_url, state_dir, **enlighten)
        yield Env(cloud, base_url, config, state_dir, capsys)
