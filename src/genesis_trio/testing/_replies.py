"""The frames the switch writes outside events, byte-for-byte as mod_event_socket does."""

from __future__ import annotations

from collections.abc import Iterable

from ..protocol import encode_frame, url_encode

__all__ = [
    "AUTH_REQUEST",
    "DISCONNECT_NOTICE",
    "GOODBYE",
    "LOG_LEVELS",
    "api_response",
    "command_reply",
    "connect_reply",
    "linger_notice",
    "log_data",
    "parse_log_level",
    "session_disconnect_notice",
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


#: switch_log_level_t's names, by number.
LOG_LEVELS = ("CONSOLE", "ALERT", "CRIT", "ERR", "WARNING", "NOTICE", "INFO", "DEBUG")


def parse_log_level(text: str) -> int | None:
    """switch_log_str2level: a number or a level name; ``None`` if invalid."""
    if text.isdigit():
        return min(int(text), 63)
    upper = text.upper()
    if upper == "ERROR":
        upper = "ERR"
    return LOG_LEVELS.index(upper) if upper in LOG_LEVELS else None


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


def connect_reply(channel_data: Iterable[tuple[str, str]], *, mode: str, control: str) -> bytes:
    """The outbound ``connect`` reply: a command/reply whose headers are the channel data.

    As recorded, every value is URL-encoded (``Reply-Text: %2BOK%0A``) and
    ``Content-Type``/``Reply-Text``/``Socket-Mode``/``Control`` come last.
    """
    headers = [
        *channel_data,
        ("Content-Type", "command/reply"),
        ("Reply-Text", "+OK\n"),
        ("Socket-Mode", mode),
        ("Control", control),
    ]
    lines = "".join(f"{name}: {url_encode(value)}\n" for name, value in headers)
    return (lines + "\n").encode("utf-8")


def linger_notice(uuid: str, channel_name: str, linger_time: int) -> bytes:
    """What an outbound socket gets after the hangup when it asked to linger."""
    return encode_frame(
        [
            ("Content-Type", "text/disconnect-notice"),
            ("Controlled-Session-UUID", uuid),
            ("Content-Disposition", "linger"),
            ("Channel-Name", channel_name),
            ("Linger-Time", str(linger_time)),
            ("Content-Length", "0"),
        ]
    )


def session_disconnect_notice(uuid: str) -> bytes:
    """The last frame of an outbound socket (after ``exit``, a hangup or the linger time)."""
    return encode_frame(
        [
            ("Content-Type", "text/disconnect-notice"),
            ("Controlled-Session-UUID", uuid),
            ("Content-Disposition", "disconnect"),
            ("Content-Length", str(len(GOODBYE))),
        ],
        GOODBYE.encode(),
    )
