"""Config rules that protect the Enlighten account."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer.cli.context import password_from_env_or_prompt
from optimizer.config import load_config
from optimizer.yamlpos import YamlFileError


def write(tmp_path: Path, base_url: str, poll: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"enlighten:\n  base_url: {base_url}\nservice:\n  poll_interval: {poll}\n")
    return path


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8080", "http://localhost:9"])
def test_fast_polling_is_allowed_against_a_local_fake(tmp_path: Path, base_url: str) -> None:
    assert load_config(write(tmp_path, base_url, "2s")).service.poll_interval.total_seconds() == 2


@pytest.mark.parametrize("base_url", ["https://enlighten.enphaseenergy.com", "http://10.0.0.5"])
def test_fast_polling_of_a_real_cloud_is_refused_at_the_key(tmp_path: Path, base_url: str) -> None:
    with pytest.raises(YamlFileError) as err:
        load_config(write(tmp_path, base_url, "10s"))
    assert str(err.value).startswith(f"{tmp_path / 'config.yaml'}:4:3: service.poll_interval")
    assert "at least 30s" in str(err.value)


def test_zero_poll_interval_is_refused(tmp_path: Path) -> None:
    with pytest.raises(YamlFileError, match="positive duration"):
        load_config(write(tmp_path, "http://127.0.0.1:1", "0s"))


def test_password_from_a_systemd_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENLIGHTEN_PASSWORD", raising=False)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    (tmp_path / "enlighten-password").write_text("s3cret-from-systemd\n")
    assert password_from_env_or_prompt() == "s3cret-from-systemd"
    monkeypatch.setenv("ENLIGHTEN_PASSWORD", "from-env")
    assert password_from_env_or_prompt() == "from-env"
