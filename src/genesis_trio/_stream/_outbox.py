"""Writing commands: the outbox, one writer at a time, reply slots in write order.

A command's reply slot is queued in the same step as its bytes, so bytes and
slots keep one order and the reader hands each reply to the oldest slot. A
caller cancelled after writing leaves its slot behind: it silently absorbs the
late reply instead of stealing the next command's.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import anyio.abc
import anyio.lowlevel

from .._exceptions import CommandStage, ConnectionLost
from .._util import describe_error
from ..protocol import ApiResponse, CommandReply
from ._socket import Notice, direct_socket, trio_path

__all__ = ["Outbox", "QueuedCommand", "Reply", "check_not_cancelled"]

Reply = CommandReply | ApiResponse


@dataclass(slots=True, eq=False)
class _PendingReply:
    label: str
    done: Notice
    # Set before the bytes go to the transport: from then on the peer may
    # have them, so a loss reports SENT, never NOT_SENT.
    written: bool = False
    reply: Reply | None = None
    error: BaseException | None = None


@dataclass(slots=True, eq=False)
class _Outgoing:
    """Bytes waiting in the outbox; ``taken`` once a writer has them."""

    data: bytes
    pending: _PendingReply | None
    taken: bool = False


#: A command queued with :meth:`Outbox.queue`, to hand to :meth:`Outbox.complete`.
QueuedCommand = _Outgoing


class Outbox:
    """The write side of one connection.

    ``on_broken`` is told when a write leaves the stream unusable (timed out,
    cancelled half-way, transport error); the connection then fails
    everything, which ends here in :meth:`fail`.
    """

    def __init__(
        self,
        stream: anyio.abc.ByteSendStream,
        *,
        write_timeout: float | None,
        on_broken: Callable[[BaseException], None],
    ) -> None:
        self._stream = stream
        self._socket = direct_socket(stream)
        # On trio (the socket is written directly), trio's own primitives: no anyio
        # layers per command. Otherwise anyio's.
        if self._socket is not None:
            fast = trio_path()
            self._notice: Callable[[], Notice] = fast.notice
            self._check_not_cancelled = fast.check_not_cancelled
        else:
            self._notice = anyio.Event
            self._check_not_cancelled = check_not_cancelled
        self._write_timeout = write_timeout
        self._on_broken = on_broken
        self._queue: list[_Outgoing] = []
        self._writing = False
        # True while a writer yields after its write to gather the next batch.
        self._gathering = False
        self._write_done: anyio.Event | None = None
        # A list, not a deque: a few commands wait at a time, and an empty deque costs an idle
        # connection ~700 bytes where a list costs 56. The oldest waiting slot is at
        # ``_answered``: a reply moves that index instead of shifting the list (pop(0) is
        # O(n) per reply with thousands in flight); the list is emptied whenever every slot
        # in it was answered, so one command at a time never grows it.
        self._pending: list[_PendingReply] = []
        self._answered = 0
        # Set once, by fail(): from then on nothing more is written.
        self._lost: BaseException | None = None

    @property
    def direct_socket(self) -> socket.socket | None:
        """The socket written directly (see :func:`direct_socket`), if the stream allows it."""
        return self._socket

    @property
    def waiting(self) -> int:
        """Commands written (or queued to be) whose reply has not come yet."""
        return len(self._pending) - self._answered

    async def send(self, data: bytes, label: str) -> Reply:
        """Write one command and wait for the reply that answers it."""
        await self._check_not_cancelled()
        return await self.complete(self.queue(data, label))

    def queue(self, data: bytes, label: str) -> _Outgoing:
        """Queue a command with its reply slot; nothing is written until :meth:`complete`.

        Commands queued one after the other go out in one write, so the peer
        reads them back to back (a pipeline). The caller checks for
        cancellation first, and withdraws what it queued if it gives up early.
        """
        if self._lost is not None:
            raise self._not_sent(label)
        pending = _PendingReply(label, self._notice())
        # Queued in the same step as its reply slot, so bytes and slots keep one order.
        self._pending.append(pending)
        outgoing = _Outgoing(data, pending)
        self._queue.append(outgoing)
        return outgoing

    async def complete(self, outgoing: _Outgoing) -> Reply:
        """Write a queued command (with whatever is queued with it) and wait for its reply."""
        pending = outgoing.pending
        assert pending is not None
        await self._write_until_sent(outgoing)
        try:
            await pending.done.wait()
        except BaseException:
            # Not taken yet (queued while a writer gathered a batch): nothing was sent.
            self._withdraw_untaken(outgoing)
            raise
        if pending.error is not None:
            raise pending.error
        assert pending.reply is not None
        return pending.reply

    def withdraw(self, outgoing: _Outgoing) -> None:
        """Take back a queued command no writer took yet (nothing of it was sent)."""
        if outgoing.taken or self._lost is not None or outgoing not in self._queue:
            return
        self._queue.remove(outgoing)
        if outgoing.pending is not None:
            self._forget(outgoing.pending)

    def _forget(self, pending: _PendingReply) -> None:
        """Drop a slot whose command was never sent (it waits, so it is past ``_answered``)."""
        slots = self._pending
        del slots[slots.index(pending, self._answered)]

    def _not_sent(self, what: str) -> ConnectionLost:
        reason = self._lost
        return ConnectionLost(
            f"cannot send {what!r}" + (f": {reason}" if reason is not None else ""),
            stage=CommandStage.NOT_SENT,
        )

    async def send_raw(self, data: bytes) -> None:
        """Write bytes that expect no reply."""
        await self._check_not_cancelled()
        if self._lost is not None:
            raise self._not_sent("raw bytes")
        outgoing = _Outgoing(data, None)
        self._queue.append(outgoing)
        await self._write_until_sent(outgoing)
        if self._lost is not None:
            raise self._lost

    def reply_arrived(self, reply: Reply) -> bool:
        """Hand a reply to the oldest waiting slot; False when no command waits for one."""
        slots = self._pending
        index = self._answered
        waiting = len(slots) - index
        if waiting == 1:
            # The last one waiting (one command in flight: the usual case).
            pending = slots[index]
            slots.clear()
            if index:
                self._answered = 0
        elif waiting:
            pending = slots[index]
            index += 1
            if index >= 64 and index * 2 >= len(slots):
                # Mostly answered slots: drop them (amortised O(1) per reply).
                del slots[:index]
                index = 0
            self._answered = index
        else:
            return False
        pending.reply = reply
        pending.done.set()
        return True

    def fail(self, reason: BaseException) -> None:
        """The connection is gone: drop what was not written, fail every waiting command."""
        self._lost = reason
        self._queue.clear()
        self._wake_writers()
        failed = self._pending[self._answered :]
        self._pending = []
        self._answered = 0
        for pending in failed:
            stage = CommandStage.SENT if pending.written else CommandStage.NOT_SENT
            pending.error = ConnectionLost(f"{pending.label!r}: {reason}", stage=stage)
            pending.done.set()

    async def _write_until_sent(self, outgoing: _Outgoing) -> None:
        """Write our command, batching whatever else is queued with it.

        Whoever finds no write in progress becomes the writer and writes
        everything queued in one go; the others wait, and one of them writes
        what was queued meanwhile. A command queued while the writer yields to
        gather a batch is written by that writer: its caller returns at once
        and only waits for the reply. A caller cancelled before its bytes were
        taken withdraws its command: nothing was written. A write cancelled or
        timed out half-way leaves the stream in an unknown state: the
        connection is failed (everything pending gets :class:`ConnectionLost`)
        and the cancellation goes on at once.
        """
        while self._lost is None and not outgoing.taken:
            if not self._writing:
                await self._write_batch()
                continue
            if self._gathering and outgoing.pending is not None:
                # The writer takes it as soon as its yield ends: its caller waits for
                # the reply alone (one wake-up, not two).
                return
            done = self._write_done
            if done is None:
                done = self._write_done = anyio.Event()
            try:
                await done.wait()
            except BaseException:
                self._withdraw_untaken(outgoing)
                raise

    def _withdraw_untaken(self, outgoing: _Outgoing) -> None:
        if not outgoing.taken and self._lost is None:
            # Never handed to the transport: withdraw it, nothing was sent.
            self._queue.remove(outgoing)
            if outgoing.pending is not None:
                self._forget(outgoing.pending)

    async def _write_batch(self) -> None:
        self._writing = True
        try:
            if await self._write_queued(gather=True) and self._queue and self._lost is None:
                # What the callers queued while we gathered: written now, by us.
                await self._write_queued(gather=False)
        finally:
            self._writing = False
            self._wake_writers()

    async def _write_queued(self, *, gather: bool) -> bool:
        """Write everything queued; True when it then yielded to gather a batch.

        With ``gather``, a write that went straight to the socket while other
        commands are in flight yields once, so their callers can queue more
        (:attr:`_gathering`); the caller of this then writes what they queued.
        """
        batch, self._queue = self._queue, []
        data = batch[0].data if len(batch) == 1 else b"".join(o.data for o in batch)
        label = "raw"
        for outgoing in reversed(batch):
            outgoing.taken = True
            if outgoing.pending is not None:
                outgoing.pending.written = True
                label = outgoing.pending.label
        try:
            if self._socket is not None:
                # Nobody else writes (we hold _writing) and the stream keeps no buffer
                # of its own, so bytes handed to the socket here keep their order. Most
                # commands fit in the kernel's buffer at once: no cancel scope, no trip
                # through the scheduler. What does not fit goes the ordinary way below.
                try:
                    sent = self._socket.send(data)
                except OSError:
                    # BlockingIOError: nothing fit. Any other error: the stream's own
                    # send below meets it again and reports it as it always does.
                    sent = 0
                if sent == len(data):
                    if gather and len(self._pending) - self._answered > 1:
                        # Other commands are in flight: let their callers run before
                        # the next write, so what they queue goes out in one batch.
                        self._gathering = True
                        try:
                            await anyio.lowlevel.cancel_shielded_checkpoint()
                        finally:
                            self._gathering = False
                        return True
                    return False
                if sent:
                    data = data[sent:]
            with anyio.move_on_after(
                math.inf if self._write_timeout is None else self._write_timeout
            ) as scope:
                await self._stream.send(data)
            if scope.cancelled_caught:
                self._on_broken(
                    ConnectionLost(
                        f"write of {label!r} timed out after {self._write_timeout:g} s: "
                        "the peer stopped reading"
                    )
                )
        except anyio.get_cancelled_exc_class():
            self._on_broken(
                ConnectionLost(f"write of {label!r} was cancelled half-way: the stream is unusable")
            )
            raise
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self._on_broken(ConnectionLost(f"write of {label!r} failed: {describe_error(exc)}"))
        return False

    def _wake_writers(self) -> None:
        done = self._write_done
        if done is not None:
            self._write_done = None
            done.set()


async def check_not_cancelled() -> None:
    """Raise the pending cancellation, if any, before a command has any effect.

    A deadline that has already passed counts too, even before the event
    loop has noticed it.
    """
    await anyio.lowlevel.checkpoint_if_cancelled()
    if anyio.current_effective_deadline() <= anyio.current_time():
        await anyio.lowlevel.checkpoint()
