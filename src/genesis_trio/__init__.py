"""genesis_trio: structured-concurrency FreeSWITCH Event Socket (ESL) for trio and AnyIO."""

from ._client import ESLClient
from ._consumer import Consumer, filtrate
from ._dispatch import HandlerRegistration
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
from ._outbound import Outbound
from ._outcome import OperationTimeout, Outcome, OutcomeScope
from ._publish import publish
from ._reconnect import Backoff
from ._session import Session
from ._stream import ConnectionDepths, ConnectionObserver, ESLConnection
from ._subscription import ConnectionGap, Overflow, Subscription, SubscriptionOverflow
from ._version import __version__
from .channel import Channel, ChannelState
from .group import (
    InMemoryLoadBalancer,
    LoadBalancerBackend,
    RedisLoadBalancer,
    RingGroup,
    RingMode,
)
from .ops import OpsServer, prometheus_meter_provider
from .protocol import ApiResponse, CommandReply, Event, EventFormat, Headers, LogData
from .queue import (
    InMemoryBackend,
    Queue,
    QueueBackend,
    QueueLeaseLost,
    QueueSemaphore,
    QueueSlot,
    QueueTimeoutError,
    RedisBackend,
)

__all__ = [
    "ApiResponse",
    "AuthenticationError",
    "Backoff",
    "Channel",
    "ChannelError",
    "ChannelHangup",
    "ChannelNotFound",
    "ChannelState",
    "CommandError",
    "CommandReply",
    "CommandStage",
    "ConnectTimeout",
    "ConnectionDepths",
    "ConnectionGap",
    "ConnectionLost",
    "ConnectionObserver",
    "Consumer",
    "ESLClient",
    "ESLConnection",
    "Event",
    "EventFormat",
    "GenesisError",
    "HandlerRegistration",
    "Headers",
    "InMemoryBackend",
    "InMemoryLoadBalancer",
    "Inbound",
    "LoadBalancerBackend",
    "LocalProtocolError",
    "LogData",
    "OperationTimeout",
    "OpsServer",
    "OriginateError",
    "Outbound",
    "Outcome",
    "OutcomeScope",
    "Overflow",
    "ProtocolError",
    "Queue",
    "QueueBackend",
    "QueueLeaseLost",
    "QueueSemaphore",
    "QueueSlot",
    "QueueTimeoutError",
    "RedisBackend",
    "RedisLoadBalancer",
    "RemoteProtocolError",
    "RingGroup",
    "RingMode",
    "Session",
    "Subscription",
    "SubscriptionOverflow",
    "__version__",
    "filtrate",
    "prometheus_meter_provider",
]

publish(globals())
