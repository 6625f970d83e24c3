"""The sans-IO ESL protocol: bytes in, messages out; commands to bytes.

Nothing here does I/O or imports trio, anyio or OpenTelemetry, so it can be
tested synchronously, fuzzed and benchmarked on its own.
"""

from .._exceptions import LocalProtocolError, ProtocolError, RemoteProtocolError
from .._publish import publish
from . import _commands as commands
from . import _fsparse as fsparse
from ._codec import url_decode, url_encode
from ._commands import MYEVENTS_NAMES
from ._framing import encode_event_frame, encode_frame
from ._headers import Headers
from ._messages import (
    ApiResponse,
    AuthRequest,
    CommandReply,
    DisconnectNotice,
    Event,
    EventFormat,
    Frame,
    LogData,
    Message,
    RudeRejection,
    decode_event,
    encode_event_body,
)
from ._parser import CONNECTION_CLOSED, DEFAULT_MAX_FRAME_SIZE, NEED_DATA, ESLParser

__all__ = [
    "CONNECTION_CLOSED",
    "DEFAULT_MAX_FRAME_SIZE",
    "MYEVENTS_NAMES",
    "NEED_DATA",
    "ApiResponse",
    "AuthRequest",
    "CommandReply",
    "DisconnectNotice",
    "ESLParser",
    "Event",
    "EventFormat",
    "Frame",
    "Headers",
    "LocalProtocolError",
    "LogData",
    "Message",
    "ProtocolError",
    "RemoteProtocolError",
    "RudeRejection",
    "commands",
    "decode_event",
    "encode_event_body",
    "encode_event_frame",
    "encode_frame",
    "fsparse",
    "url_decode",
    "url_encode",
]

publish(globals())
