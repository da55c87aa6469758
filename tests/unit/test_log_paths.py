"""Paths as logged: a channel's callback token never reaches a log line."""

from __future__ import annotations

from gateway.api.middleware import loggable_path


def test_callback_tokens_are_masked_and_other_paths_kept() -> None:
    assert loggable_path("/upstream/callbacks/s3cr3t-T0ken/1234") == "/upstream/callbacks/***/1234"
    assert loggable_path("/upstream/callbacks/s3cr3t-T0ken") == "/upstream/callbacks/***/"
    assert loggable_path("/mj/task/1234/fetch") == "/mj/task/1234/fetch"
    assert loggable_path("/console/invite/s3cr3t-T0ken") == "/console/invite/***/"
