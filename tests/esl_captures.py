"""The recorded FreeSWITCH sessions and the message types the parser yields,
shared by the protocol tests and the fake switch's wire tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from genesis_trio.protocol import (
    ApiResponse,
    AuthRequest,
    CommandReply,
    DisconnectNotice,
    Event,
    Frame,
    LogData,
    RudeRejection,
)

# Raw bytes recorded from a real FreeSWITCH, kept in the repository (see captures/README.txt).
CAPTURES_DIR = Path(__file__).resolve().parent / "captures"

MESSAGE_TYPES = (
    AuthRequest,
    CommandReply,
    ApiResponse,
    Event,
    LogData,
    DisconnectNotice,
    RudeRejection,
    Frame,
)


def read_capture(file_name: str) -> bytes:
    """The bytes of one capture file; skips the test where the captures are absent."""
    path = CAPTURES_DIR / file_name
    if not path.is_file():
        pytest.fail(f"FreeSWITCH capture {path} is missing from the repository", pytrace=False)
    return path.read_bytes()
