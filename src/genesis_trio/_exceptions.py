"""The one exception hierarchy of genesis_trio.

Pure Python on purpose: the sans-IO protocol package raises these too, and it
must stay importable without trio, anyio or OpenTelemetry.
"""

from __future__ import annotations

import enum

__all__ = [
    "AuthenticationError",
    "ChannelError",
    "ChannelHangup",
    "ChannelNotFound",
    "CommandError",
    "CommandStage",
    "ConnectTimeout",
    "ConnectionLost",
    "GenesisError",
    "LocalProtocolError",
    "OriginateError",
    "ProtocolError",
    "RemoteProtocolError",
]


class GenesisError(Exception):
    """Root of every exception genesis_trio raises on purpose."""


class ProtocolError(GenesisError):
    """Something on the wire was not valid ESL."""


class LocalProtocolError(ProtocolError, ValueError):
    """We were about to send something invalid; nothing was written."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that are not valid ESL."""


class CommandStage(enum.Enum):
    """How far a command had got when its connection was lost.

    Callers use it to decide whether a retry is safe: a command that was never
    sent can be retried; one that was sent may or may not have run.
    """

    NOT_SENT = "not_sent"
    SENT = "sent"
    ACCEPTED = "accepted"


class ConnectionLost(GenesisError):
    """The ESL connection closed or broke under a pending operation."""

    def __init__(self, message: str = "connection lost", *, stage: CommandStage | None = None):
        super().__init__(message if stage is None else f"{message} (stage: {stage.value})")
        self.stage = stage


class ConnectTimeout(GenesisError, TimeoutError):
    """The TCP connection or the ESL greeting did not complete in time."""


class AuthenticationError(GenesisError):
    """FreeSWITCH refused the credentials. The message never contains the password."""


class CommandError(GenesisError):
    """FreeSWITCH answered a command with ``-ERR``."""

    def __init__(self, command: str, reply: str) -> None:
        super().__init__(f"{command!r} failed: {reply}")
        self.command = command
        self.reply = reply


class OriginateError(CommandError):
    """An originate failed; ``cause`` holds the hangup cause (e.g. ``USER_BUSY``)."""

    def __init__(self, command: str, reply: str, cause: str) -> None:
        super().__init__(command, reply)
        self.cause = cause


class ChannelError(GenesisError):
    """A channel operation could not complete."""


class ChannelHangup(ChannelError):
    """The channel hung up while an operation was waiting on it."""

    def __init__(self, uuid: str, cause: str | None = None) -> None:
        super().__init__(f"channel {uuid} hung up" + (f" ({cause})" if cause else ""))
        self.uuid = uuid
        self.cause = cause


class ChannelNotFound(ChannelError):
    """FreeSWITCH has no channel with that uuid."""

    def __init__(self, uuid: str) -> None:
        super().__init__(f"no such channel: {uuid}")
        self.uuid = uuid
