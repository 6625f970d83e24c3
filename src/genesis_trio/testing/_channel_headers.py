"""The header blocks a channel's events carry, as switch_channel_event_set_data writes them.

Also the tables read from a channel (``show channels``, ``uuid_getvar``) and the
call-detail variables set when it hangs up.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._causes import cause_code
from ._channel_core import (
    CALL_STATE_NUMBERS,
    CHANNEL_STATE_NUMBERS,
    ENDPOINT_SOURCES,
    ChannelCore,
    HostT,
)
from ._event_factory import SITES, local_stamp

__all__ = ["ChannelHeaders"]


class ChannelHeaders(ChannelCore[HostT]):
    """A channel's headers and the events it fires with them."""

    def channel_data(
        self, *, variables: bool = True, hangup_cause: bool = True
    ) -> list[tuple[str, str]]:
        """The channel's header block (switch_channel_event_set_data)."""
        headers = [
            ("Channel-State", self.state),
            ("Channel-Call-State", self.call_state),
            ("Channel-State-Number", str(self._state_number)),
            ("Channel-Name", self.name),
            ("Unique-ID", self.uuid),
            ("Call-Direction", self.direction),
            ("Presence-Call-Direction", self.direction),
            ("Channel-HIT-Dialplan", "true" if self._hit_dialplan else "false"),
            ("Channel-Call-UUID", self.uuid),
            ("Answer-State", self._answer_state),
        ]
        if hangup_cause and self.hangup_cause is not None:
            headers.append(("Hangup-Cause", self.hangup_cause))
        headers += [
            ("Channel-Read-Codec-Name", self.variables.get("read_codec", "PCMU")),
            ("Channel-Read-Codec-Rate", self.variables.get("read_rate", "8000")),
            ("Channel-Read-Codec-Bit-Rate", self._bit_rate()),
            ("Channel-Write-Codec-Name", self.variables.get("write_codec", "PCMU")),
            ("Channel-Write-Codec-Rate", self.variables.get("write_rate", "8000")),
            ("Channel-Write-Codec-Bit-Rate", self._bit_rate()),
        ]
        other = self._other_leg
        if other is not None:
            role = "originatee" if self._bridge_a_side else "originator"
            headers.append(("Other-Type", role))
            headers += [
                pair
                for pair in other.caller_profile("Other-Leg-")
                if pair[0] not in ("Other-Leg-Profile-Index", "Other-Leg-Transfer-Source")
            ]
        headers += self.caller_profile()
        if variables:
            headers += [("variable_" + name, value) for name, value in self.variables.items()]
        return headers

    def _bit_rate(self) -> str:
        return "128000" if self.variables.get("read_codec") == "L16" else "64000"

    def show_fields(self, hostname: str) -> dict[str, str]:
        """This channel's row of ``show channels`` (the columns that have a value)."""
        running = self._running_app
        return {
            "uuid": self.uuid,
            "direction": self.direction,
            "created": local_stamp(self._created_us),
            "created_epoch": str(self._created_us // 1_000_000),
            "name": self.name,
            "state": self.state,
            "cid_name": self._caller_name,
            "cid_num": self._caller_number,
            "dest": self.destination_number,
            "application": running.name if running else "",
            "application_data": running.data if running else "",
            "dialplan": "XML",
            "context": self.context,
            "read_codec": self.variables.get("read_codec", "PCMU"),
            "read_rate": self.variables.get("read_rate", "8000"),
            "read_bit_rate": "64000",
            "write_codec": self.variables.get("write_codec", "PCMU"),
            "write_rate": self.variables.get("write_rate", "8000"),
            "write_bit_rate": "64000",
            "hostname": hostname,
            "callstate": self.call_state,
            "callee_name": self._callee_name,
            "callee_num": self._callee_number,
            "call_uuid": self.uuid,
            "initial_cid_name": self._caller_name,
            "initial_cid_num": self._caller_number,
            "initial_dest": self.destination_number,
            "initial_dialplan": "XML",
            "initial_context": self.context,
        }

    def caller_profile(self, prefix: str = "Caller-") -> list[tuple[str, str]]:
        """The caller profile block, with ``Caller-`` (or another prefix) on every name.

        As switch_caller_profile_event_set_data, empty fields (a caller ID name
        nobody gave) are left out."""
        return [
            (prefix + name.removeprefix("Caller-"), value)
            for name, value in self._profile()
            if value
        ]

    def _profile(self) -> list[tuple[str, str]]:
        caller = (self._caller_name, self._caller_number)
        callee = (self._callee_name, self._callee_number)
        # Once the originate completes, the profile shows the callee as the caller.
        (shown_name, shown_number), (other_name, other_number) = (
            (callee, caller) if self._cid_flipped else (caller, callee)
        )
        return [
            ("Caller-Direction", self.direction),
            ("Caller-Logical-Direction", self._logical_direction),
            ("Caller-Dialplan", "xml"),
            ("Caller-Caller-ID-Name", shown_name),
            ("Caller-Caller-ID-Number", shown_number),
            ("Caller-Orig-Caller-ID-Name", self._caller_name),
            ("Caller-Orig-Caller-ID-Number", self._caller_number),
            ("Caller-Callee-ID-Name", other_name),
            ("Caller-Callee-ID-Number", other_number),
            ("Caller-ANI", self._caller_number),
            ("Caller-Destination-Number", self.destination_number),
            ("Caller-Unique-ID", self.uuid),
            ("Caller-Source", ENDPOINT_SOURCES.get(self.endpoint, f"mod_{self.endpoint}")),
            ("Caller-Context", self.context),
            ("Caller-Channel-Name", self.name),
            ("Caller-Transfer-Source", self._transfer_source),
            ("Caller-Profile-Index", str(self._profile_index)),
            ("Caller-Profile-Created-Time", str(self._created_us)),
            ("Caller-Channel-Created-Time", str(self._created_us)),
            ("Caller-Channel-Answered-Time", str(self._answered_us)),
            ("Caller-Channel-Progress-Time", str(self._progress_us)),
            ("Caller-Channel-Progress-Media-Time", str(self._progress_media_us)),
            ("Caller-Channel-Hangup-Time", str(self._hangup_us)),
            ("Caller-Channel-Transfer-Time", "0"),
            ("Caller-Channel-Resurrect-Time", "0"),
            ("Caller-Channel-Bridged-Time", "0"),
            ("Caller-Channel-Last-Hold", "0"),
            ("Caller-Channel-Hold-Accum", "0"),
            ("Caller-Screen-Bit", "true"),
            ("Caller-Privacy-Hide-Name", "false"),
            ("Caller-Privacy-Hide-Number", "false"),
        ]

    def lookup_variable(self, name: str) -> str | None:
        """switch_channel_get_variable: a variable, else a caller profile field."""
        value = self.variables.get(name)
        if value is not None:
            return value
        caller_name, caller_number = self._caller_name, self._caller_number
        fields = {
            "dialplan": "XML",
            "caller_id_name": caller_name,
            "caller_id_number": caller_number,
            "ani": caller_number,
            "destination_number": self.destination_number,
            "uuid": self.uuid,
            "source": ENDPOINT_SOURCES.get(self.endpoint, f"mod_{self.endpoint}"),
            "context": self.context,
            "chan_name": self.name,
        }
        return fields.get(name) or None

    def _shown_caller_id(self) -> tuple[str, str]:
        """The caller ID the channel shows (the callee's once the originate flipped it)."""
        if self._cid_flipped:
            return self._callee_name, self._callee_number
        return self._caller_name, self._caller_number

    # ------------------------------------------------------------------- firing

    def emit(
        self,
        name: str,
        *,
        before: Iterable[tuple[str, str]] = (),
        after: Iterable[tuple[str, str]] = (),
        variables: bool = True,
        hangup_cause: bool = True,
        site: str | None = None,
    ) -> None:
        """Fire ``name`` with ``before`` + channel data (+ variables) + ``after``
        (``site``: a key of ``SITES`` other than the event's name)."""
        data = self.channel_data(variables=variables, hangup_cause=hangup_cause)
        calling = SITES[site] if site is not None else None
        self._host.fire(self._factory.event(name, [*before, *data, *after], site=calling))

    def _set_running_state(self, state: str) -> None:
        self._state_number = CHANNEL_STATE_NUMBERS[state]
        self.state = state
        self.emit("CHANNEL_STATE", variables=False)

    def _set_call_state(self, call_state: str) -> None:
        original = self.call_state
        self.call_state = call_state
        self.emit(
            "CHANNEL_CALLSTATE",
            before=[
                ("Original-Channel-Call-State", original),
                ("Channel-Call-State-Number", str(CALL_STATE_NUMBERS[call_state])),
            ],
            variables=False,
        )

    def _fire_codec_events(self, uuid: str, name: str) -> None:
        """The two CODEC events of a new loopback leg (read codec, then write codec)."""
        codec, rate, bits = self.variables["read_codec"], "8000", self._bit_rate()
        channel = [
            ("Channel-State", "CS_NONE"),
            ("Channel-Call-State", "DOWN"),
            ("Channel-State-Number", "0"),
            ("Channel-Name", name),
            ("Unique-ID", uuid),
            ("Call-Direction", self.direction),
            ("Presence-Call-Direction", self.direction),
            ("Channel-HIT-Dialplan", "true" if self.loopback_leg == "B" else "false"),
            ("Channel-Call-UUID", uuid),
            ("Answer-State", "ringing"),
        ]
        read = [
            ("Channel-Read-Codec-Name", codec),
            ("Channel-Read-Codec-Rate", rate),
            ("Channel-Read-Codec-Bit-Rate", bits),
        ]
        write = [
            ("Channel-Write-Codec-Name", codec),
            ("Channel-Write-Codec-Rate", rate),
            ("Channel-Write-Codec-Bit-Rate", bits),
        ]
        factory, fire = self._factory, self._host.fire
        fire(
            factory.event(
                "CODEC",
                [
                    *channel,
                    *read,
                    ("channel-read-codec-name", codec),
                    ("channel-read-codec-rate", rate),
                    ("channel-read-codec-bit-rate", bits),
                ],
                site=SITES["CODEC_READ"],
            )
        )
        fire(
            factory.event(
                "CODEC",
                [
                    *channel,
                    *read,
                    *write,
                    ("Channel-Write-Codec-Name", codec),
                    ("Channel-Write-Codec-Rate", rate),
                    ("Channel-Write-codec-bit-rate", bits),
                ],
                site=SITES["CODEC_WRITE"],
            )
        )

    def _record_cdr_variables(self, cause: str) -> None:
        end = self._hangup_us or self._factory.clock.now_us()
        created = self._created_us
        variables = self.variables
        variables["hangup_cause"] = cause
        variables["hangup_cause_q850"] = str(cause_code(cause))
        variables["digits_dialed"] = self._digits_dialed or "none"
        variables["start_stamp"] = local_stamp(created)
        variables["profile_start_stamp"] = local_stamp(created)
        if self._answered_us:
            variables["answer_stamp"] = local_stamp(self._answered_us)
        if self._progress_us:
            variables["progress_stamp"] = local_stamp(self._progress_us)
        if self._progress_media_us:
            variables["progress_media_stamp"] = local_stamp(self._progress_media_us)
        variables["end_stamp"] = local_stamp(end)
        for name, value in (
            ("start", created),
            ("profile_start", created),
            ("answer", self._answered_us),
            ("bridge", 0),
            ("last_hold", 0),
        ):
            variables[f"{name}_epoch"] = str(value // 1_000_000)
            variables[f"{name}_uepoch"] = str(value)
        variables["hold_accum_seconds"] = "0"
        variables["hold_accum_usec"] = "0"
        variables["hold_accum_ms"] = "0"
        for name, value in (
            ("resurrect", 0),
            ("progress", self._progress_us),
            ("progress_media", self._progress_media_us),
            ("end", end),
        ):
            variables[f"{name}_epoch"] = str(value // 1_000_000)
            variables[f"{name}_uepoch"] = str(value)
        if self.last_application is not None:
            variables["last_app"] = self.last_application
            if self._last_application_data:
                variables["last_arg"] = self._last_application_data
        name, number = self._shown_caller_id()
        variables["caller_id"] = f'"{name}" <{number}>' if name else number

        def since_created(moment: int) -> int:
            return moment - created if moment else 0

        billed = end - self._answered_us if self._answered_us else 0
        durations = (
            ("bill", billed),
            ("progress", since_created(self._progress_us)),
            ("answer", since_created(self._answered_us)),
            ("wait", 0),
            ("progress_media", since_created(self._progress_media_us)),
            ("flow_bill", billed),
        )
        units = (("", "sec", 1_000_000), ("m", "msec", 1_000), ("u", "usec", 1))
        for prefix, unit, divisor in units:
            variables[f"{prefix}duration"] = str((end - created) // divisor)
            for name, micros in durations:
                variables[f"{name}{unit}"] = str(micros // divisor)
