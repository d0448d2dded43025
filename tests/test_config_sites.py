"""The ``sites:`` list (issue 13 item 2): several sites and accounts in one config.

Each item becomes a complete single-site view, so the service and commands keep one form;
mistakes name the key and both positions.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.cli import main
from optimizer.cli.rules import run_validate
from optimizer.config import load_config
from optimizer.connect import client_for, unattended_password
from optimizer.yamlpos import YamlFileError

RULE = """\
policies:
  - name: cheap
    kind: tariff_window
    windows: [{window}]
    amps: 16
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "a.yaml").write_text(RULE.format(window="night"))
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


TWO = """\
service:
  state_dir: state
sites:
  - name: home
    enlighten:
      email: a@example.com
      site_id: 100
    site:
      timezone: Europe/Berlin
      max_current: 32
    tariffs:
      windows:
        night: {times: "00:00-06:00", price: 0.1}
    rules: [rules/a.yaml]
  - enlighten:
      email: b@example.com
      site_id: 200
      password_env: BARN_PASSWORD
    tariffs:
      windows:
        night: {times: "01:00-05:00", price: 0.2}
    rules: [rules/a.yaml]
"""


def test_each_site_is_a_complete_single_site_view(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, TWO))
    home, barn = config.site_configs()
    assert (home.enlighten.site_id, barn.enlighten.site_id) == (100, 200)
    assert (home.label, barn.label) == ("home", "200")
    assert (home.site.max_current, barn.site.max_current) == (32, None)
    assert home.tariffs.windows["night"].price != barn.tariffs.windows["night"].price
    # Global sections are shared; the state dir resolves against the file as before.
    assert home.state_dir == barn.state_dir == tmp_path / "state"
    assert (home.sites, barn.sites) == (None, None)
    assert load_config(write(tmp_path, "enlighten: {site_id: 5}\n")).site_configs()[0].label == "5"


def test_the_single_site_form_is_its_own_view(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "enlighten:\n  site_id: 7\nrules: [rules/a.yaml]\n"))
    assert config.site_configs() == [config]
    assert config.account_key() is None  # session.json keeps its name


def test_top_level_site_keys_beside_sites_are_refused_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, "rules: [rules/a.yaml]\ntariffs: {}\n" + TWO)
    with pytest.raises(YamlFileError) as err:
        load_config(path)
    lines = str(err.value).splitlines()
    assert lines[0].startswith(f"{path}:1:1: 'rules' cannot be at the top level")
    assert lines[1].startswith(f"{path}:2:1: 'tariffs' cannot be at the top level")
    assert all("move it into each item of 'sites'" in line for line in lines)


def test_a_site_listed_twice_names_both_positions(tmp_path: Path) -> None:
    path = write(tmp_path, TWO.replace("site_id: 200", "site_id: 100"))
    with pytest.raises(YamlFileError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}:17:7: sites[1]: site_id 100 is listed twice: sites[0] at {path}:7:7 "
        "already has it; each site may be listed once"
    )


def test_a_name_listed_twice_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        TWO.replace(
            "  - enlighten:\n      email: b", "  - name: home\n    enlighten:\n      email: b"
        ),
    )
    with pytest.raises(YamlFileError, match=r"sites\[1\]: name home is listed twice"):
        load_config(path)


def test_every_site_needs_its_id(tmp_path: Path) -> None:
    path = write(tmp_path, TWO.replace("      site_id: 200\n", ""))
    with pytest.raises(YamlFileError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}:15:5: sites[1]: 'enlighten.site_id' is required")


def test_an_unknown_key_in_an_item_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path, TWO.replace("    site:\n      timezone", "    sitee:\n      timezone"))
    with pytest.raises(YamlFileError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}:8:5: unknown key 'sitee'")
    assert "did you mean 'site'?" in message
    assert "valid keys: name, enlighten, site, tariffs, rules" in message


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("sites: []\n", "sites"),
        ("sites:\n  - name: 'has space'\n    enlighten: {site_id: 1}\n", "sites.0.name"),
        ("sites:\n  - enlighten: {site_id: 1, password_env: 'x-y'}\n", "password_env"),
    ],
)
def test_bad_values_in_sites_are_explained(tmp_path: Path, text: str, wanted: str) -> None:
    with pytest.raises(YamlFileError) as err:
        load_config(write(tmp_path, text))
    assert wanted in str(err.value)
    assert "Input should" not in str(err.value)


def test_validate_checks_each_site_against_its_own_tariffs(tmp_path: Path) -> None:
    path = write(tmp_path, TWO.replace('night: {times: "01:00', 'day: {times: "01:00'))
    report = run_validate([], str(path))
    assert not report.ok
    # The shared rule file is fine for home and wrong for site 200: the error says which.
    assert [p.message.split(":")[0] for p in report.errors] == ["site 200"]
    assert "unknown tariff window 'night'" in report.errors[0].message
    assert report.errors[0].file.endswith("a.yaml")
    fixed = run_validate([], str(write(tmp_path, TWO)))
    assert fixed.ok
    assert fixed.policies == 2


def test_a_rule_pattern_matching_nothing_points_into_its_item(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        TWO.replace(
            "rules: [rules/a.yaml]\n  - enlighten", "rules: [rules/none.yaml]\n  - enlighten"
        ),
    )
    report = run_validate([], str(path))
    assert [str(p) for p in report.errors] == [
        f"{path}:14:13: rules: 'rules/none.yaml' matches no file"
    ]


def test_each_account_has_its_own_password_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, barn = load_config(write(tmp_path, TWO)).site_configs()
    monkeypatch.setenv("ENLIGHTEN_PASSWORD", "shared")
    monkeypatch.setenv("BARN_PASSWORD", "barn-secret")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert unattended_password(barn) == "barn-secret"
    assert unattended_password(home) == "shared"
    (tmp_path / "enlighten-password-home").write_text("home-secret\n")
    assert unattended_password(home) == "home-secret"


def test_a_site_email_is_not_overridden_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENLIGHTEN_EMAIL", "env@example.com")
    home, barn = load_config(write(tmp_path, TWO)).site_configs()
    assert (home.account_email(), barn.account_email()) == ("a@example.com", "b@example.com")
    assert home.account_key() != barn.account_key()


async def test_session_files_are_per_account_and_not_named_by_email(tmp_path: Path) -> None:
    home, barn = load_config(write(tmp_path, TWO)).site_configs()
    for view in (home, barn):
        client = client_for(view, password_provider=None)
        client.auth._store.save({"base_url": view.enlighten.base_url})  # type: ignore[union-attr]
        await client.close()
    names = sorted(p.name for p in (tmp_path / "state").iterdir())
    assert names == sorted(f"session-{v.account_key()}.json" for v in (home, barn))
    assert not any("example" in name for name in names)
    for name in names:
        assert stat.S_IMODE(os.stat(tmp_path / "state" / name).st_mode) == 0o600


def test_site_names_need_a_sites_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without ``sites:``, ``--site`` is a site id as before; a name is refused (exit 1)
    before anything is sent."""
    path = write(tmp_path, "enlighten:\n  site_id: 7\nrules: [rules/a.yaml]\n")
    assert main(["--config", str(path), "status", "--site", "home"]) == 1
    assert "--site home: not a site id" in capsys.readouterr().err


def test_commands_for_one_site_ask_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, TWO)
    assert main(["--config", str(path), "mode", "get"]) == 1
    err = capsys.readouterr().err
    assert "the config lists several sites (home, 200)" in err
    assert "--site NAME or --site ID" in err


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=6),
    amps=st.lists(st.integers(min_value=6, max_value=80), min_size=6, max_size=6),
)
def test_views_and_duplicates_for_any_list_of_sites(ids: list[int], amps: list[int]) -> None:
    """Any list: each site id listed again is one error naming the first; without
    duplicates, view i holds item i's keys and the globals unchanged."""
    with tempfile.TemporaryDirectory() as tmp:
        items = "".join(
            f"  - enlighten: {{site_id: {site_id}}}\n    site: {{max_current: {amps[i]}}}\n"
            f"    rules: []\n"
            for i, site_id in enumerate(ids)
        )
        path = write(Path(tmp), f"charger: {{start_amps: 10}}\nsites:\n{items}")
        repeats = len(ids) - len(set(ids))
        if repeats:
            with pytest.raises(YamlFileError) as err:
                load_config(path)
            assert len(err.value.problems) == repeats
            assert all("is listed twice" in p.message for p in err.value.problems)
            return
        views = load_config(path).site_configs()
    assert [v.enlighten.site_id for v in views] == ids
    assert [v.site.max_current for v in views] == amps[: len(ids)]
    assert [v.site_index for v in views] == list(range(len(ids)))
    assert {v.charger.start_amps for v in views} == {10}
