"""Settings: environment parsing, nested groups, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.config import Settings, default_data_dir


def test_defaults_need_no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.database.url is None
    assert settings.redis.url is None
    assert settings.data_dir == default_data_dir()
    assert settings.simulator.speed_factor == 1.0
    assert settings.simulator.core_size == 3
    assert settings.simulator.queue_size == 10


def test_nested_groups_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEWAY_DATABASE__URL", "postgresql://u:topsecret@db/gw")
    monkeypatch.setenv("GATEWAY_DATABASE__POOL_MAX_SIZE", "7")
    monkeypatch.setenv("GATEWAY_SIMULATOR__SPEED_FACTOR", "250")
    monkeypatch.setenv("GATEWAY_SIMULATOR__FAULTS__HTTP_500", "0.25")
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "d"))
    settings = Settings()
    assert settings.database.url is not None
    assert settings.database.url.get_secret_value() == "postgresql://u:topsecret@db/gw"
    assert settings.database.pool_max_size == 7
    assert settings.simulator.speed_factor == 250
    assert settings.simulator.faults.http_500 == 0.25
    assert settings.data_dir == tmp_path / "d"


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEWAY_REDIS__URL", "redis://:hunter2@cache:6379/0")
    monkeypatch.setenv("GATEWAY_SIMULATOR__SECRET", "sim-hunter2")
    settings = Settings()
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in settings.model_dump_json()


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("GATEWAY_SERVER__PORT=9123\nGATEWAY_LOG__FORMAT=json\n")
    settings = Settings()
    assert settings.server.port == 9123
    assert settings.log.format == "json"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATEWAY_SIMULATOR__SPEED_FACTOR", "0"),
        ("GATEWAY_SIMULATOR__FAULTS__STALL", "1.5"),
        ("GATEWAY_SERVER__PORT", "70000"),
        ("GATEWAY_LOG__LEVEL", "LOUD"),
    ],
)
def test_bad_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    with pytest.raises(
        ValidationError, match=name.removeprefix("GATEWAY_").split("__")[-1].lower()
    ):
        Settings()


def test_a_hold_must_outlive_the_longest_submit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEWAY_UPSTREAM__SUBMIT_TIMEOUT_S", "100")
    monkeypatch.setenv("GATEWAY_UPSTREAM__MAX_ATTEMPTS", "3")
    monkeypatch.setenv("GATEWAY_RELAY__HOLD_DEADLINE_S", "300")
    with pytest.raises(ValidationError, match="hold_deadline_s must exceed the longest submit"):
        Settings()
    monkeypatch.setenv("GATEWAY_RELAY__HOLD_DEADLINE_S", "310")
    assert Settings().relay.hold_deadline_s == 310
