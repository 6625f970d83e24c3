"""genesis_trio: structured-concurrency FreeSWITCH Event Socket (ESL) for trio and AnyIO."""

from ._client import ESLClient
from ._consumer import Consumer, filtrate
from ._exceptions import (
    AuthenticationError,
    ChannelError,
    ChannelHangup,
    ChannelNotFound,
    CommandError,
    CommandStage,
    ConnectionLost,
    ConnectTimeout,
    GenesisError,
    LocalProtocolError,
    OriginateError,
    ProtocolError,
    RemoteProtocolError,
)
from ._inbound import Inbound
from ._stream import ESLConnection
from ._subscription import Overflow, Subscription, SubscriptionOverflow
from .protocol import ApiResponse, CommandReply, Event, EventFormat, Headers, LogData

__version__ = "0.1.0"

__all__ = [
    "ApiResponse",
    "AuthenticationError",
    "ChannelError",
    "ChannelHangup",
    "ChannelNotFound",
    "CommandError",
    "CommandReply",
    "CommandStage",
    "ConnectTimeout",
    "ConnectionLost",
    "Consumer",
    "ESLClient",
    "ESLConnection",
    "Event",
    "EventFormat",
    "GenesisError",
    "Headers",
    "Inbound",
    "LocalProtocolError",
    "LogData",
    "OriginateError",
    "Overflow",
    "ProtocolError",
    "RemoteProtocolError",
    "Subscription",
    "SubscriptionOverflow",
    "__version__",
    "filtrate",
]
