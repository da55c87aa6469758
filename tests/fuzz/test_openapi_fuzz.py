"""Schema fuzzing: schemathesis drives every operation of ``/schema/openapi.json`` against a
``gateway serve`` process, with a client key and then with an admin token. No answer may be a
5xx, none may fall outside the documented statuses, media types and shapes, authentication may
not be ignored, and afterwards the money adds up and no request was an unexpected error.

The run is repeatable: ``SEED`` and ``EXAMPLES`` (per operation) are in the README.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import asyncpg

from tests.api.helpers import roomy_channel_and_key
from tests.conftest import StartSimulator
from tests.processes import StartGatewayProcess, reconcile

SEED = 20261204
EXAMPLES = 25
ADMIN_TOKEN = "admin-token-of-the-fuzzing-run"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "negative_data_rejection",
        "ignored_auth",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
    ]
)


async def _schemathesis(base_url: str, token: str, paths: str, folder: Path) -> tuple[int, str]:
    """One run; its caches and its JUnit report are kept in ``folder``."""
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{base_url}/schema/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--include-path-regex",
        paths,
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--generation-allow-x00",
        "false",  # NUL is refused anywhere in a body, unknown fields too (README)
        "--workers",
        "1",  # its threads trip a CPython 3.11 bug in ast.parse (SystemError)
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(folder),
    ]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=folder, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def test_every_operation_answers_as_documented_under_fuzzing(
    gateway_process_factory: StartGatewayProcess,
    simulator_factory: StartSimulator,
    db_pool: asyncpg.Pool,
    database_url: str,
    tmp_path: Path,
) -> None:
    # Room for every submit the fuzzer makes: no queue fills, no balance runs out.
    key = await roomy_channel_and_key(db_pool, simulator_factory, "fuzzer")
    process = await gateway_process_factory(
        GATEWAY_ADMIN__TOKENS=json.dumps([ADMIN_TOKEN]), GATEWAY_LOG__LEVEL="INFO"
    )

    for token, paths, name in (
        (key, "^/(mj|api/me)", "client"),
        (ADMIN_TOKEN, "^/api/admin/", "admin"),
    ):
        folder = tmp_path / name
        folder.mkdir()
        code, output = await _schemathesis(process.base_url, token, paths, folder)
        assert code == 0, output[-6000:]
        assert f"Seed: {SEED}" in output, output[-2000:]

    log = process.log_path.read_text(errors="replace")
    assert '"unexpected_error"' not in log, log[-4000:]
    exit_code, report = await reconcile(database_url, tmp_path)
    assert exit_code == 0, report
