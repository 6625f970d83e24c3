"""The channel's tasks: its session runs applications one at a time, as FreeSWITCH's
session thread does, and a park serves the messages ``sendmsg`` queues.

Two tasks drive a channel inside one task group: the *far end* (ringing,
early media, answer, the other party's hangup) and the *session* (the
applications). A parked channel runs the queued messages (``execute`` nests
an application inside the park, as ``switch_ivr_park`` does). A hangup, from
either side, cancels that task group; the teardown events
(``CHANNEL_HANGUP_COMPLETE``, ``CHANNEL_DESTROY``, ...) follow, and
``CHANNEL_DESTROY`` waits until an outbound socket holding the channel is gone.
"""

from __future__ import annotations

from abc import abstractmethod

import anyio

from ..protocol import Event
from ._channel_core import (
    CHANNEL_STATE_NUMBERS,
    ApplicationRun,
    BoundApplication,
    HostT,
    QueuedExecute,
)
from ._channel_media import ChannelMedia
from ._event_factory import SITES, new_uuid

__all__ = ["ChannelSession"]


class ChannelSession(ChannelMedia[HostT]):
    """The channel's tasks, its applications and its park."""

    @abstractmethod
    def _find_application(self, name: str) -> BoundApplication | None:
        """The application ``name`` bound to this channel; None if the switch lacks it."""

    # ---------------------------------------------------------------- the tasks

    async def run(self) -> None:
        """The channel's life, from the first ring to ``CHANNEL_DESTROY``."""
        try:
            if self.hangup_cause is None:
                async with anyio.create_task_group() as task_group:
                    self._cancel_scope = task_group.cancel_scope
                    task_group.start_soon(self._far_end)
                    task_group.start_soon(self._session)
                    if self.destination.dtmf:
                        task_group.start_soon(self._press_scripted_dtmf)
            self._cancel_scope = None
            self._teardown()
            if not self._released.is_set():
                # An outbound socket holds the session: DESTROY fires once it let go.
                await self._released.wait()
            self._destroy()
        finally:
            self._ended.set()
            self._notify_apps()
            self._host.channel_ended(self)

    async def _session(self) -> None:
        await self._originated.wait()
        if self.hangup_cause is not None:
            return
        extension = self.destination.applications if self.loopback_leg == "B" else None
        if extension is not None and not extension:
            # The dialplan found no extension: the -b leg ends in CS_ROUTING.
            self.request_hangup("NO_ROUTE_DESTINATION")
            return
        if self.direction == "inbound":
            self._set_running_state("CS_EXECUTE")
        request = self._request
        if extension is None:
            await self.execute(request.application, request.application_data)
        else:
            for name, data in extension:
                if self.hangup_cause is not None:
                    return
                await self.execute(name, data)
        while self.hangup_cause is None:
            # A fresh event before looking: a wake-up can only come after the look.
            wakeup = self._session_wakeup = anyio.Event()
            if self._park_requested:
                self._park_requested = False
                await self.execute("park")
            elif self._bridge_partner is not None or self._bridging:
                await wakeup.wait()
            else:
                break
        # The extension ran out of applications: the session hangs up.
        self.request_hangup("NORMAL_CLEARING")

    async def execute(self, name: str, data: str = "", *, uuid: str | None = None) -> str:
        """Run one application with its EXECUTE / EXECUTE_COMPLETE events.

        ``uuid`` is its ``Application-UUID`` (a ``sendmsg``'s ``Event-UUID``).
        """
        app = self._find_application(name)
        if app is None:
            # An application the switch does not have ends the call.
            self.request_hangup("DESTINATION_OUT_OF_ORDER")
            await anyio.sleep_forever()
            return "_none_"
        running = ApplicationRun(name, data, uuid or new_uuid())
        self._running.append(running)
        self.applications.append(running)
        self.last_application = name
        self._last_application_data = data
        self.variables["current_application"] = name
        # Each application starts with no response, and no data unless it has some.
        self.variables.pop("current_application_response", None)
        if data:
            self.variables["current_application_data"] = data
        else:
            self.variables.pop("current_application_data", None)
        self.emit("CHANNEL_EXECUTE", after=self._application_headers(running))
        # As switch_core_session_exec does right after CHANNEL_EXECUTE: a break
        # that found nothing running never reaches the next application.
        self._break_pending = False
        self._notify_apps()
        try:
            response = await app.run(data)
        except anyio.get_cancelled_exc_class():
            if self.hangup_cause is None and running in self._running:
                # Unwound by an unpark (a bridge), not a hangup: report it here.
                self._running.remove(running)
                running.interrupted = True
                self._complete(running, app.interrupted_response)
            raise
        if running in self._running:
            self._running.remove(running)
        self._complete(running, response)
        return response

    def _application_headers(
        self, running: ApplicationRun, response: str | None = None
    ) -> list[tuple[str, str]]:
        headers = [("Application", running.name)]
        if running.data:
            headers.append(("Application-Data", running.data))
        if response is not None:
            headers.append(("Application-Response", response))
        headers.append(("Application-UUID", running.uuid))
        return headers

    def _complete(self, running: ApplicationRun, response: str) -> None:
        if response != "_none_":
            # Only applications that answer something set it (playback: FILE PLAYED).
            self.variables["current_application_response"] = response
        # EXECUTE_COMPLETE reports the variable: a park reports what a playback nested
        # in it answered.
        response = self.variables.get("current_application_response", "_none_")
        running.response = response
        self.emit("CHANNEL_EXECUTE_COMPLETE", after=self._application_headers(running, response))
        self._notify_apps()

    def _teardown(self) -> None:
        cause = self.hangup_cause or "NORMAL_CLEARING"
        # The innermost application returns first; then the park loop notices.
        while len(self._running) > 1:
            inner = self._running.pop()
            inner.interrupted = True
            app = self._find_application(inner.name)
            self._complete(inner, app.interrupted_response if app else "_none_")
        if self._parked:
            self._parked = False
            self.emit("CHANNEL_UNPARK")
        running = self._running_app
        if running is not None:
            self._running.clear()
            app = self._find_application(running.name)
            self._complete(running, app.interrupted_response if app else "_none_")
        self._set_running_state("CS_HANGUP")
        self._set_call_state("HANGUP")
        self._set_running_state("CS_REPORTING")
        self._record_cdr_variables(cause)
        if self.loopback_leg is not None:
            self.variables["is_loopback"] = "1"
        # As recorded: HANGUP_COMPLETE carries the cause twice, at the top.
        self.emit(
            "CHANNEL_HANGUP_COMPLETE",
            before=[("Hangup-Cause", cause), ("Hangup-Cause", cause)],
            hangup_cause=False,
        )
        self._reported.set()
        self._notify_apps()

    def _destroy(self) -> None:
        self._state_number = CHANNEL_STATE_NUMBERS["CS_DESTROY"]
        self.emit("CHANNEL_DESTROY")
        self._set_running_state("CS_DESTROY")

    # ------------------------------------------------------------------ parking

    def enter_park(self) -> None:
        self._parked = True
        self.emit("CHANNEL_PARK")
        self._notify_apps()

    async def park(self) -> str:
        """The ``park`` application: run queued messages until the channel leaves park.

        A channel already parked cannot park again (switch_ivr_park refuses a
        controlled channel): the nested ``park`` returns at once.
        """
        if self._parked:
            return "_none_"
        self.enter_park()
        self._unparked = anyio.Event()
        with anyio.CancelScope() as scope:
            self._park_scope = scope
            try:
                await self._serve_queue()
            finally:
                self._park_scope = None
        self._parked = False
        self.emit("CHANNEL_UNPARK")
        self._unparked.set()
        return "_none_"

    async def _serve_queue(self) -> None:
        while True:
            while not self._queue:
                self._queue_changed = anyio.Event()
                await self._queue_changed.wait()
            message = self._queue.popleft()
            loops = max(1, message.loops)
            for loop in range(loops):
                self.variables["current_loop"] = str(loop + 1)
                self.variables["total_loops"] = str(loops)
                await self.execute(message.name, message.data, uuid=message.uuid)
            self.variables.pop("current_loop", None)
            self.variables.pop("total_loops", None)
            if message.message:
                # switch_ivr_parse_next_event reports the message it just ran.
                self._host.fire(
                    Event(
                        [
                            *message.message,
                            *self._factory.standard_headers(
                                "PRIVATE_COMMAND", SITES["PRIVATE_COMMAND"]
                            ),
                            *self.channel_data(variables=False),
                        ]
                    )
                )

    def queue_execute(
        self,
        name: str,
        data: str,
        uuid: str,
        *,
        loops: int = 1,
        message: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """A ``sendmsg`` ``execute``: the channel runs it when it gets to its queue."""
        self._queue.append(QueuedExecute(name, data, uuid, loops, message))
        self._queue_changed.set()

    def unpark(self) -> None:
        """End the park (and what runs inside it) now; its events follow in the session."""
        if self._park_scope is not None:
            self._park_scope.cancel()

    async def leave_park(self) -> None:
        """End the park, as a transfer to a bridge does, and wait until it ended."""
        if self._park_scope is None:
            return
        self.unpark()
        await self._unparked.wait()

    def request_park(self) -> None:
        """``uuid_park``: park now, or once the current application returns."""
        if self._parked:
            return
        partner = self._bridge_partner
        if partner is not None:
            self._end_bridge()
            partner.request_hangup("NORMAL_CLEARING")
        self._park_requested = True
        self._session_wakeup.set()
