"""The fake's built-in ``api`` commands, with mod_commands' reply texts."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import anyio

from ..protocol import encode_event_body, fsparse
from ._causes import parse_cause
from ._channels import FakeChannel
from ._event_factory import new_uuid
from ._originate_parser import OriginateSyntaxError, parse_originate
from ._switch import Switch

__all__ = ["BUILTIN_APIS", "NO_SUCH_CHANNEL", "VERSION"]

BuiltinApi = Callable[[Switch, str], Awaitable[str]]

VERSION = "1.11.3-dev"
NO_SUCH_CHANNEL = "-ERR No such channel!\n"

SHOW_CHANNELS_COLUMNS = [
    "uuid",
    "direction",
    "created",
    "created_epoch",
    "name",
    "state",
    "cid_name",
    "cid_num",
    "ip_addr",
    "dest",
    "application",
    "application_data",
    "dialplan",
    "context",
    "read_codec",
    "read_rate",
    "read_bit_rate",
    "write_codec",
    "write_rate",
    "write_bit_rate",
    "secure",
    "hostname",
    "presence_id",
    "presence_data",
    "accountcode",
    "callstate",
    "callee_name",
    "callee_num",
    "callee_direction",
    "call_uuid",
    "sent_callee_name",
    "sent_callee_num",
    "initial_cid_name",
    "initial_cid_num",
    "initial_ip_addr",
    "initial_dest",
    "initial_dialplan",
    "initial_context",
]


async def _status(fake: Switch, argument: str) -> str:
    micros = int((anyio.current_time() - fake._started_at) * 1_000_000)
    seconds, micro = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    years, day = divmod(days, 365)
    current = len(fake.channels)
    peak = fake._peak_sessions
    return (
        f"UP {years} years, {day} days, {hour} hours, {minute} minutes, {second} seconds, "
        f"{micro // 1000} milliseconds, {micro % 1000} microseconds\n"
        f"FreeSWITCH (Version {VERSION}  64bit) is ready\n"
        f"{fake._session_count} session(s) since startup\n"
        f"{current} session(s) - peak {peak}, last 5min {peak} \n"
        "0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n"
        "1000 session(s) max\n"
        "min idle cpu 0.00/100.00\n"
        "Current Stack Size/Max 240K/8192K\n"
    )


async def _version(fake: Switch, argument: str) -> str:
    if argument.strip() == "short":
        return f"{VERSION}\n"
    return f"FreeSWITCH Version {VERSION}~64bit ( 64bit)\n"


async def _uptime(fake: Switch, argument: str) -> str:
    return f"{int(anyio.current_time() - fake._started_at)}\n"


async def _hostname(fake: Switch, argument: str) -> str:
    return fake.identity.hostname


async def _global_getvar(fake: Switch, argument: str) -> str:
    name = argument.strip()
    if not name:
        return "".join(f"{key}={value}\n" for key, value in fake.global_variables.items())
    return fake.global_variables.get(name, "")


async def _global_setvar(fake: Switch, argument: str) -> str:
    name, separator, value = argument.partition("=")
    if not separator or not name.strip():
        return "-USAGE: <var>=<value>\n"
    fake.global_variables[name.strip()] = value
    return "+OK"


async def _echo(fake: Switch, argument: str) -> str:
    return argument


async def _reloadxml(fake: Switch, argument: str) -> str:
    return "+OK [Success]\n"


async def _msleep(fake: Switch, argument: str) -> str:
    text = argument.strip()
    if not text.isdigit():
        return "-USAGE: <milliseconds>\n"
    await anyio.sleep(int(text) / 1000)
    return "+OK"


async def _create_uuid(fake: Switch, argument: str) -> str:
    return new_uuid()


async def _log(fake: Switch, argument: str) -> str:
    level, _, text = argument.strip().partition(" ")
    if not level:
        return "-ERR\n"
    fake.log(text, level=level)
    return "+OK\n"


async def _originate(fake: Switch, argument: str) -> str:
    try:
        request = parse_originate(argument)
    except OriginateSyntaxError as error:
        return str(error)
    channel = await fake._create_channel(request)
    if channel is None:
        return "-ERR NO_ROUTE_DESTINATION\n"
    failure = await channel.wait_originated()
    if failure is not None:
        return f"-ERR {failure}\n"
    return f"+OK {channel.uuid}\n"


async def _uuid_kill(fake: Switch, argument: str) -> str:
    if not argument.strip():
        return "-USAGE: <uuid> [cause]\n"
    uuid, _, cause = argument.strip().partition(" ")
    channel = fake.channels.get(uuid)
    if channel is None:
        return NO_SUCH_CHANNEL
    channel.request_hangup(parse_cause(cause) if cause else "NORMAL_CLEARING")
    return "+OK\n"


async def _hupall(fake: Switch, argument: str) -> str:
    cause = parse_cause(argument.split()[0], "MANAGER_REQUEST") if argument.split() else None
    cause = cause or "MANAGER_REQUEST"
    for channel in list(fake.channels.values()):
        channel.request_hangup(cause)
    return f"+OK hangup all channels with cause {cause}\n"


async def _uuid_exists(fake: Switch, argument: str) -> str:
    return "true" if argument.strip() in fake.channels else "false"


async def _uuid_getvar(fake: Switch, argument: str) -> str:
    words = fsparse.separate_string(argument, " ", 2)
    if len(words) < 2:
        return "-USAGE: <uuid> <var>\n"
    channel = fake.channels.get(words[0])
    if channel is None:
        return NO_SUCH_CHANNEL
    return channel.lookup_variable(words[1]) or "_undef_"


async def _uuid_setvar(fake: Switch, argument: str) -> str:
    # mod_commands: at most three space-separated, unquoted and unescaped words;
    # the value is the rest of the line. An empty value unsets.
    words = fsparse.separate_string(argument, " ", 3)
    if len(words) not in (2, 3) or not words[0]:
        return "-USAGE: <uuid> <var> [value]\n"
    channel = fake.channels.get(words[0])
    if channel is None:
        return NO_SUCH_CHANNEL
    if not words[1]:
        return "-ERR No variable specified\n"
    if len(words) == 3 and words[2]:
        channel.variables[words[1]] = words[2]
    else:
        channel.variables.pop(words[1], None)
    return "+OK\n"


async def _uuid_dump(fake: Switch, argument: str) -> str:
    words = argument.split()
    if not words:
        return "-USAGE: <uuid> [format]\n"
    channel = fake.channels.get(words[0])
    if channel is None:
        return NO_SUCH_CHANNEL
    event = fake.factory.event("CHANNEL_DATA", channel.channel_data())
    dump_format = words[1].lower() if len(words) > 1 else "txt"
    if dump_format == "json":
        return encode_event_body(event, "json").decode("utf-8")
    if dump_format == "xml":
        return encode_event_body(event, "xml").decode("utf-8")
    if dump_format == "plain":
        # "plain" is the one dump format whose values are not URL-encoded.
        return "".join(f"{name}: {value}\n" for name, value in event.headers.multi_items()) + "\n"
    return encode_event_body(event, "plain").decode("utf-8")


async def _uuid_break(fake: Switch, argument: str) -> str:
    if not argument.strip():
        return "-USAGE: <uuid> [all]\n"
    uuid, _, flag = argument.strip().partition(" ")
    channel = fake.channels.get(uuid)
    if channel is None:
        return "-ERR No such channel!\n"
    channel.request_break(flush="all" in flag)
    return "+OK\n"


async def _uuid_bridge(fake: Switch, argument: str) -> str:
    words = argument.split()
    if len(words) < 2:
        return "-USAGE: <uuid> <other_uuid>\n"
    a_leg = fake.channels.get(words[0])
    b_leg = fake.channels.get(words[1])
    if a_leg is None or b_leg is None or a_leg is b_leg:
        return "-ERR Invalid uuid\n"
    if a_leg.hangup_cause is not None or b_leg.hangup_cause is not None:
        return "-ERR Invalid uuid\n"
    await a_leg.bridge_with(b_leg)
    return f"+OK {b_leg.uuid}\n"


async def _uuid_send_dtmf(fake: Switch, argument: str) -> str:
    words = argument.split()
    if len(words) < 2:
        return "-USAGE: <uuid> <dtmf_data>\n"
    channel = fake.channels.get(words[0])
    if channel is None:
        return "-ERR Cannot locate session!\n"
    channel.send_dtmf(words[1])
    return f"+OK {words[0]} sent DTMF {words[1]}.\n"


async def _uuid_park(fake: Switch, argument: str) -> str:
    uuid = argument.strip()
    if not uuid:
        return "-USAGE: <uuid>\n"
    channel = fake.channels.get(uuid)
    if channel is None:
        return NO_SUCH_CHANNEL
    channel.request_park()
    return "+OK\n"


def _show_row(fake: Switch, channel: FakeChannel) -> list[str]:
    row = channel.show_fields(fake.identity.hostname)
    return [row.get(column, "") for column in SHOW_CHANNELS_COLUMNS]


async def _show(fake: Switch, argument: str) -> str:
    words = argument.split()
    if not words or words[0].lower() not in ("channels", "calls"):
        return f"-USAGE: {_SHOW_USAGE}\n"
    channels = sorted(fake.channels.values(), key=lambda channel: channel.created_us)
    rest = [word.lower() for word in words[1:]]
    if rest[:1] == ["count"]:
        return f"\n{len(channels)} total.\n"
    if rest[:1] == ["like"] and len(words) > 2:
        # The channels table's uuid, name, cid_name, cid_num contain the string.
        needle = words[2]
        channels = [
            channel
            for channel in channels
            if any(
                needle in value
                for key, value in channel.show_fields(fake.identity.hostname).items()
                if key in ("uuid", "name", "cid_name", "cid_num")
            )
        ]
        rest = rest[2:]
    output_format = rest[1] if len(rest) >= 2 and rest[0] == "as" else "delim"
    rows = [_show_row(fake, channel) for channel in channels]
    if output_format == "json":
        if not rows:
            return '{"row_count": 0}\n'
        document = {
            "row_count": len(rows),
            "rows": [dict(zip(SHOW_CHANNELS_COLUMNS, row, strict=True)) for row in rows],
        }
        return json.dumps(document, separators=(",", ":"))
    if output_format not in ("delim", "csv"):
        return f"-ERR Cannot find format {output_format}\n"
    lines = []
    if rows:
        lines.append(",".join(SHOW_CHANNELS_COLUMNS) + "\n")
        lines += [",".join(row) + "\n" for row in rows]
    return "".join(lines) + f"\n{len(rows)} total.\n"


_SHOW_USAGE = "codec|endpoint|application|api|dialplan|file|timer|calls [count]|channels [count|like <match string>]|calls|detailed_calls|bridged_calls|detailed_bridged_calls|aliases|complete|chat|management|modules|nat_map|say|interfaces|interface_types|tasks|limits|status"  # noqa: E501

BUILTIN_APIS: dict[str, BuiltinApi] = {
    "status": _status,
    "version": _version,
    "uptime": _uptime,
    "hostname": _hostname,
    "global_getvar": _global_getvar,
    "global_setvar": _global_setvar,
    "echo": _echo,
    "reloadxml": _reloadxml,
    "msleep": _msleep,
    "create_uuid": _create_uuid,
    "log": _log,
    "originate": _originate,
    "uuid_kill": _uuid_kill,
    "hupall": _hupall,
    "uuid_exists": _uuid_exists,
    "uuid_getvar": _uuid_getvar,
    "uuid_setvar": _uuid_setvar,
    "uuid_dump": _uuid_dump,
    "uuid_break": _uuid_break,
    "uuid_bridge": _uuid_bridge,
    "uuid_send_dtmf": _uuid_send_dtmf,
    "uuid_park": _uuid_park,
    "show": _show,
}
