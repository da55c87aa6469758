"""Channel secrets sealed at rest: they open only with the same key, for the same purpose."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway.config import Settings
from gateway.errors import SealingError, StartupError
from gateway.sealing import SecretBox, key_material, secret_box

PURPOSE = "channel secret"


def test_a_sealed_secret_opens_with_its_key_and_purpose_only() -> None:
    box = SecretBox(b"an operator's sealing key")
    sealed = box.seal("mj-secret-42", PURPOSE)

    assert b"mj-secret-42" not in sealed
    assert box.open(sealed, PURPOSE) == "mj-secret-42"
    assert box.seal("mj-secret-42", PURPOSE) != sealed  # a fresh nonce every time
    with pytest.raises(SealingError, match="does not open"):
        SecretBox(b"another sealing key!").open(sealed, PURPOSE)
    with pytest.raises(SealingError, match="does not open"):
        box.open(sealed, "webhook secret")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealingError, match="does not open"):
        box.open(tampered, PURPOSE)
    with pytest.raises(SealingError, match="unknown format"):
        box.open(b"\x02" + sealed[1:], PURPOSE)
    with pytest.raises(StartupError, match="at least 16"):
        SecretBox(b"short")


def test_key_material_is_configured_or_generated_once(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "sealing.key"
    assert key_material(SecretStr("configured-key"), path) == b"configured-key"
    assert not path.exists()
    generated = key_material(None, path)
    assert len(generated) >= 48
    assert key_material(None, path) == generated
    assert path.stat().st_mode & 0o777 == 0o600


def test_old_keys_open_what_they_sealed_and_the_first_key_seals() -> None:
    old, new = b"the sealing key of last year", b"the sealing key of this year"
    sealed_before = SecretBox(old).seal("s-1", PURPOSE)
    both = SecretBox(new, old)
    assert both.open(sealed_before, PURPOSE) == "s-1"
    assert SecretBox(new).open(both.seal("s-2", PURPOSE), PURPOSE) == "s-2"
    with pytest.raises(SealingError):
        SecretBox(new).open(sealed_before, PURPOSE)


def test_a_database_of_its_own_needs_a_configured_sealing_key(tmp_path: Path) -> None:
    embedded = secret_box(Settings(data_dir=tmp_path))
    assert embedded.open(embedded.seal("x", PURPOSE), PURPOSE) == "x"
    with pytest.raises(StartupError, match="set GATEWAY_RELAY__SEALING_KEY"):
        secret_box(Settings(data_dir=tmp_path, database={"url": "postgresql://db/gateway"}))
    configured = Settings(
        data_dir=tmp_path,
        database={"url": "postgresql://db/gateway"},
        relay={"sealing_key": "k" * 16, "sealing_old_keys": ["o" * 16]},
    )
    assert secret_box(configured).open(SecretBox(b"o" * 16).seal("y", PURPOSE), PURPOSE) == "y"
