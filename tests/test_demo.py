"""`make demo` must keep working: it is the first thing a new user runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer import demo

ROOT = Path(__file__).resolve().parent.parent


def test_demo_simulates_the_sample_then_tours_the_fake_cloud(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake-cloud tour sets these in os.environ; monkeypatch restores them afterwards.
    monkeypatch.delenv("EVOPT_CONFIG", raising=False)
    monkeypatch.delenv("ENLIGHTEN_PASSWORD", raising=False)
    output = tmp_path / "out"
    # Two weeks of the bundled year keep the test short; `make demo` replays all of it.
    code = demo.main(
        ["--output", str(output), "--rules", str(ROOT / "rules"), "--to", "2025-01-14"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "% of optimal solar" in out  # the report beside the baselines
    assert (output / "sample-week.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (output / "state" / "simulations.db").exists()
    assert not (output / "state" / "decisions.db").exists()  # the live log stays untouched
    assert f"plot: {output / 'sample-week.png'}" in out
    assert f"simulation log: {output / 'state' / 'simulations.db'}" in out
    assert "Demo complete." in out  # the live tour ran to the end
    assert '"session_kwh"' in out
    # The IQ Gateway as the surplus source, its token fetched with the MFA login's session.
    assert "Fetched and stored an owner token for gateway" in out
    assert "surplus from gateway" in out
