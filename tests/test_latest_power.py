"""``get_latest_power`` is PV production (enlighten-2026.md section 9), in every shape it comes.

One fixture per reply variant, derived from ``latest_power_2026`` (the reference's example).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from optimizer.cli import main
from optimizer.enlighten.models import parse_latest_power
from optimizer.fakecloud import FakeClock, FakeCloud
from tests.cli_env import SITE_ID
from tests.fixtures import load_fixture
from tests.served import served_client

SAMPLE_AT = datetime(2026, 5, 1, 9, 55, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "watts", "pv"),
    [
        ("latest_power_2026", 1840.0, 1840.0),
        ("latest_power_night", -30.0, 0.0),  # no sun: no production, not a load
        ("latest_power_data_wrapper", 1840.0, 1840.0),
        ("latest_power_string", 1840.0, 1840.0),
        ("latest_power_ms_time", 1840.0, 1840.0),
        ("latest_power_missing", None, None),  # no sample, never zero
        ("latest_power_not_a_number", None, None),
    ],
)
def test_latest_power_variants(name: str, watts: float | None, pv: float | None) -> None:
    sample = parse_latest_power(load_fixture(name))
    assert (sample.watts, sample.pv_w) == (watts, pv)
    assert sample.time == SAMPLE_AT


def test_latest_power_sign_is_obsolete_but_accepted_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVOPT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(
        "policies:\n  - name: manual\n    kind: charge_mode\n    mode: MANUAL_CHARGING\n",
        encoding="utf-8",
    )
    (tmp_path / "config.yaml").write_text(
        "surplus:\n  source: auto\n  latest_power_sign: export_positive\nrules: [rules/*.yaml]\n",
        encoding="utf-8",
    )
    code = main(["validate"])
    out, err = capsys.readouterr()
    assert code == 0
    assert err.startswith(
        "config.yaml:3:3: warning[latest-power-sign]: surplus.latest_power_sign is obsolete"
    )
    assert "PV production" in err
    assert "(1 warning)" in out


@pytest.mark.parametrize(
    ("when", "night"),
    [
        (datetime(2025, 1, 15, 2, 0, tzinfo=UTC), False),
        (datetime(2025, 1, 15, 14, tzinfo=UTC), True),
    ],
)
async def test_the_fake_cloud_sends_pv_production(
    tmp_path: Path, when: datetime, night: bool
) -> None:
    cloud = FakeCloud(clock=FakeClock(when))
    async with served_client(cloud, state_dir=tmp_path) as client:
        sample = await client.latest_power(SITE_ID)
    production = cloud.model.curves.pv_w(cloud.now())
    if night:
        assert (production, sample.watts, sample.pv_w) == (0.0, -30.0, 0.0)
    else:
        assert sample.watts == pytest.approx(production, abs=1)
        assert sample.pv_w is not None
        assert sample.pv_w > 1000
