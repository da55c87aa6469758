"""Channel secrets sealed at rest: they open only with the same key, for the same purpose."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway.errors import StartupError
from gateway.sealing import SecretBox, key_material

PURPOSE = "channel secret"


def test_a_sealed_secret_opens_with_its_key_and_purpose_only() -> None:
    box = SecretBox(b"an operator's sealing key")
    sealed = box.seal("mj-secret-42", PURPOSE)

    assert b"mj-secret-42" not in sealed
    assert box.open(sealed, PURPOSE) == "mj-secret-42"
    assert box.seal("mj-secret-42", PURPOSE) != sealed  # a fresh nonce every time
    with pytest.raises(StartupError, match="does not open"):
        SecretBox(b"another sealing key!").open(sealed, PURPOSE)
    with pytest.raises(StartupError, match="does not open"):
        box.open(sealed, "webhook secret")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(StartupError, match="does not open"):
        box.open(tampered, PURPOSE)
    with pytest.raises(StartupError, match="unknown format"):
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
