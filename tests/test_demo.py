"""`make demo` must keep working: it is the first thing a new user runs."""

from __future__ import annotations

import pytest

from optimizer.fakecloud import demo


def test_demo_runs_every_step(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo sets these in os.environ; monkeypatch restores them afterwards.
    monkeypatch.delenv("EVOPT_CONFIG", raising=False)
    monkeypatch.delenv("ENLIGHTEN_PASSWORD", raising=False)
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert "Demo complete." in out
    assert "$ evopt status --json" in out
    assert '"session_kwh"' in out
