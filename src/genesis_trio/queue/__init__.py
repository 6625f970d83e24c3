"""FIFO queues with a concurrency bound: slots and semaphores, in memory or on Redis."""

from .._publish import publish
from ._backend import QueueBackend
from ._errors import QueueLeaseLost, QueueTimeoutError
from ._memory import InMemoryBackend
from ._queue import Queue, QueueSemaphore, QueueSlot
from ._redis import RedisBackend

__all__ = [
    "InMemoryBackend",
    "Queue",
    "QueueBackend",
    "QueueLeaseLost",
    "QueueSemaphore",
    "QueueSlot",
    "QueueTimeoutError",
    "RedisBackend",
]

publish(globals())
