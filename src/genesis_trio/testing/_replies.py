"""The frames the switch writes outside events, byte-for-byte as mod_event_socket does."""

from __future__ import annotations

from ..protocol import encode_frame

__all__ = [
    "AUTH_REQUEST",
    "DISCONNECT_NOTICE",
    "GOODBYE",
    "api_response",
    "command_reply",
    "log_data",
]

AUTH_REQUEST = b"Content-Type: auth/request\n\n"

GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"

DISCONNECT_NOTICE = encode_frame(
    [("Content-Type", "text/disconnect-notice"), ("Content-Length", str(len(GOODBYE)))],
    GOODBYE.encode(),
)


def command_reply(reply_text: str, *extra: tuple[str, str]) -> bytes:
    """``command/reply`` with ``Reply-Text`` first, then any extra headers (bgapi's Job-UUID)."""
    return encode_frame([("Content-Type", "command/reply"), ("Reply-Text", reply_text), *extra])


def api_response(body: str) -> bytes:
    """``api/response``; an empty output becomes ``-ERR no reply`` as in api_exec."""
    data = (body or "-ERR no reply\n").encode("utf-8")
    return encode_frame(
        [("Content-Type", "api/response"), ("Content-Length", str(len(data)))],
        data,
    )


def log_data(
    line: str,
    *,
    level: int,
    text_channel: int,
    file: str,
    function: str,
    line_number: int,
    user_data: str = "",
) -> bytes:
    """``log/data`` with the header order of read_packet's log branch."""
    data = line.encode("utf-8")
    return encode_frame(
        [
            ("Content-Type", "log/data"),
            ("Content-Length", str(len(data))),
            ("Log-Level", str(level)),
            ("Text-Channel", str(text_channel)),
            ("Log-File", file),
            ("Log-Func", function),
            ("Log-Line", str(line_number)),
            ("User-Data", user_data),
        ],
        data,
    )
