"""What the switch does with each command a client sends, and what it replies.

The wire (``_connection``, ``_outbound_socket``) reads a command and writes the
reply these handlers return; the handlers change the switch (``api``, ``bgapi``,
``sendmsg``, ``sendevent``) and the sending client's subscription and log level
(``event``, ``filter``, ``myevents``, ``log``, ...), with mod_event_socket's reply
texts.
"""

from __future__ import annotations

import inspect
from typing import Protocol

from ..protocol import Event, fsparse
from ._api import BUILTIN_APIS
from ._channels import FakeChannel
from ._command_reader import Command
from ._event_factory import SITES, new_uuid
from ._replies import DISCONNECT_NOTICE, api_response, command_reply, parse_log_level
from ._subscriptions import Subscription
from ._switch import Switch

__all__ = [
    "ClientSession",
    "ControlledSession",
    "execute_api",
    "handle_command",
    "session_command",
]

_FORMATS = ("plain", "json", "xml")


class ClientSession(Protocol):
    """What a command may change on the connection that sent it."""

    subscription: Subscription
    log_level: int | None
    authenticated: bool

    def drop_queued_events(self) -> None:
        """``noevents``: events queued but not written yet are not written."""

    def drop_queued_logs(self) -> None:
        """``nolog``: log lines queued but not written yet are not written."""


class ControlledSession(Protocol):
    """An outbound socket: the connection that controls one call."""

    subscription: Subscription
    linger: int | None  # None: no linger; -1: until exit; else seconds
    diverting: bool

    @property
    def channel(self) -> FakeChannel: ...


async def execute_api(switch: Switch, name: str, argument: str) -> str:
    """Run ``api name argument`` (a registered handler, else a built-in), then fire ``API``."""
    # switch_api_execute strips whitespace from both ends of the argument.
    stripped = argument.strip(fsparse.API_WHITESPACE)
    handler = switch._apis.get(name)
    if handler is not None:
        result = handler(stripped)
        body = await result if inspect.isawaitable(result) else result
    else:
        builtin = BUILTIN_APIS.get(name)
        if builtin is None:
            return f"-ERR {name} Command not found!\n"
        body = await builtin(switch, stripped)
    headers = [("API-Command", name)]
    if argument:
        headers.append(("API-Command-Argument", argument))
    switch.fire(switch.factory.event("API", headers))
    return str(body)


def _start_job(switch: Switch, name: str, argument: str, job_uuid: str | None) -> str:
    job_uuid = job_uuid or new_uuid()
    switch._require_task_group().start_soon(
        _run_job, switch, name, argument, job_uuid, name=f"bgapi {name} {job_uuid}"
    )
    return job_uuid


async def _run_job(switch: Switch, name: str, argument: str, job_uuid: str) -> None:
    body = await execute_api(switch, name, argument)
    headers = [("Job-UUID", job_uuid), ("Job-Command", name)]
    if argument:
        headers.append(("Job-Command-Arg", argument))
    switch.fire(switch.factory.event("BACKGROUND_JOB", headers, body))


def _sendevent(switch: Switch, command: Command) -> str:
    event_uuid = new_uuid()
    name = command.line.partition(" ")[2].strip() or "CLONE"
    headers = [("Command", command.line), *command.headers, ("Event-UUID", event_uuid)]
    subclass = command.header("Event-Subclass")
    if name.upper() == "CUSTOM" and subclass is not None:
        # switch_event_set_subclass_name moves the subclass to the top.
        headers = [
            ("Event-Subclass", subclass),
            *(pair for pair in headers if pair[0].lower() != "event-subclass"),
        ]
    target = command.header("Unique-ID")
    if target is not None and target in switch.channels:
        # An event for a live session is queued to it, not fired.
        return f"+OK {event_uuid}"
    standard = switch.factory.standard_headers(name, SITES["SENDEVENT"])
    switch.fire(Event([*headers, *standard], command.body))
    return f"+OK {event_uuid}"


def sendmsg(switch: Switch, command: Command, uuid: str) -> str:
    """``sendmsg``: hang the channel up, or queue an application for it to execute."""
    uuid = uuid or (command.header("session-id") or "")
    switch._messages.append((uuid, {name.lower(): value for name, value in command.headers}))
    channel = switch.channels.get(uuid)
    if channel is None:
        return f"-ERR invalid session id [{uuid}]"
    call_command = (command.header("call-command") or "").lower()
    if call_command == "hangup":
        channel.request_hangup(command.header("hangup-cause") or "NORMAL_CLEARING")
    elif call_command == "execute":
        # switch_ivr_parse_event: the body is the argument only when the
        # header is absent or empty and content-type is text/plain.
        argument = command.header("execute-app-arg")
        content_type = (command.header("content-type") or "").lower()
        if not argument and content_type == "text/plain" and command.body:
            argument = command.body
        loops = command.header("loops") or "1"
        channel.queue_execute(
            command.header("execute-app-name") or "",
            argument or "",
            command.header("Event-UUID") or new_uuid(),
            loops=int(loops) if loops.isdigit() else 1,
            message=(("Command", command.line), *command.headers),
        )
    return "+OK"


async def handle_command(
    switch: Switch, client: ClientSession, command: Command
) -> tuple[bytes, bool]:
    """The reply to an inbound client's ``command``, and whether the connection stays open."""
    line = command.line
    verb, _, rest = line.partition(" ")
    verb = verb.lower()
    if verb == "exit":
        return command_reply("+OK bye") + DISCONNECT_NOTICE, False
    if not client.authenticated:
        return _unauthenticated(switch, client, verb, rest)
    if verb == "api" and " " in line:
        name, _, argument = rest.partition(" ")
        return api_response(await execute_api(switch, name, argument)), True
    if verb == "bgapi" and " " in line:
        name, _, argument = rest.partition(" ")
        job_uuid = _start_job(switch, name, argument, command.header("Job-UUID"))
        return command_reply(f"+OK Job-UUID: {job_uuid}", ("Job-UUID", job_uuid)), True
    return command_reply(_session_command(switch, client, command, verb, rest)), True


def _session_command(
    switch: Switch, client: ClientSession, command: Command, verb: str, rest: str
) -> str:
    subscription = client.subscription
    if verb == "event":
        return subscription.event(rest.split())
    if verb == "nixevent":
        return subscription.nixevent(rest.split())
    if verb == "noevents":
        client.drop_queued_events()
        return subscription.noevents()
    if verb == "filter" and " " in command.line:
        return subscription.filter(rest)
    if verb == "myevents" and rest.strip():
        uuid, _, event_format = rest.strip().partition(" ")
        if event_format and uuid not in switch.channels:
            return "-ERR invalid uuid"
        return subscription.myevents(uuid, event_format or None)
    if verb == "sendevent":
        return _sendevent(switch, command)
    if verb == "sendmsg":
        return sendmsg(switch, command, rest.strip())
    if verb == "log":
        return _set_log_level(client, rest.strip().partition(" ")[0])
    if verb == "nolog":
        client.drop_queued_logs()
        if client.log_level is None:
            return "-ERR not loging"
        client.log_level = None
        return "+OK no longer logging"
    if verb in ("linger", "nolinger", "divert_events"):
        suffix = "." if verb == "divert_events" else ""
        return f"-ERR not controlling a session{suffix}"
    return "-ERR command not found"


def _unauthenticated(
    switch: Switch, client: ClientSession, verb: str, rest: str
) -> tuple[bytes, bool]:
    if verb == "auth" and rest:
        if rest == switch.password:
            client.authenticated = True
            return command_reply("+OK accepted"), True
    elif verb != "userauth":
        return command_reply("-ERR command not found"), True
    return command_reply("-ERR invalid") + DISCONNECT_NOTICE, False


def _set_log_level(client: ClientSession, level_text: str) -> str:
    level = parse_log_level(level_text) if level_text else 7
    if level is None:
        return "-ERR invalid log level"
    client.log_level = level
    return f"+OK log level {level_text} [{level}]"


def session_command(switch: Switch, session: ControlledSession, command: Command) -> str | None:
    """The reply to a command that acts on an outbound socket's call; None for any other
    command (answered as on an inbound connection)."""
    verb, _, rest = command.line.partition(" ")
    verb = verb.lower()
    rest = rest.strip()
    channel = session.channel
    if verb == "myevents" and (not rest or rest.lower() in _FORMATS):
        return session.subscription.myevents(channel.uuid, rest or None)
    if verb == "linger":
        seconds = int(rest) if rest.isdigit() else None
        session.linger = -1 if seconds is None else seconds
        return "+OK will linger" + ("" if seconds is None else f" {seconds} seconds")
    if verb == "nolinger":
        session.linger = None
        return "+OK will not linger"
    if verb == "resume":
        channel.variables["socket_resume"] = "true"
        return "+OK"
    if verb == "divert_events":
        session.diverting = rest.lower() == "on"
        return f"+OK events {'' if session.diverting else 'not '}diverted"
    if verb == "sendmsg":
        return sendmsg(switch, command, rest or channel.uuid)
    return None
