"""Per-connection counts of the counters bumped per command, event or handler call.

Each connection counts them in plain dicts (:class:`Tally`); :class:`~._metrics.Instruments`
reports the totals through observable instruments when a reader collects, so the SDK does
no work per command or event for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from . import _names as n

__all__ = ["TALLIED", "Tally", "TallyKey"]


#: The labels of one tallied data point, in the order the call site gives them.
TallyKey = tuple[tuple[str, str], ...]

# The counters a connection bumps per command, per event or per handler call. (Tally attribute,
# metric name, up-down?, unit, description.) They are counted in plain dicts by the
# connection (Tally) and reported through observable instruments when a reader
# collects: the SDK does no work per event for them.
TALLIED: Final = (
    ("commands_sent", n.METRIC_COMMANDS_SENT, False, "{command}", "ESL commands sent"),
    (
        "events_received",
        n.METRIC_EVENTS_RECEIVED,
        False,
        "{event}",
        "ESL events received",
    ),
    (
        "events_without_sip_call_id",
        n.METRIC_EVENTS_WITHOUT_SIP_CALL_ID,
        False,
        "{event}",
        "Channel events that arrived without variable_sip_call_id "
        "(calls that cannot be joined to another system's traces)",
    ),
    (
        "calls_active",
        n.METRIC_CALLS_ACTIVE,
        True,
        "{channel}",
        "Channels between CHANNEL_CREATE and CHANNEL_DESTROY",
    ),
    ("hangup_causes", n.METRIC_HANGUP_CAUSES, False, "{channel}", "Hangups by cause"),
    (
        "hangup_causes_q850",
        n.METRIC_HANGUP_CAUSES_Q850,
        False,
        "{channel}",
        "Hangups by Q.850 cause code (from CHANNEL_HANGUP_COMPLETE)",
    ),
    (
        "dialplan_applications",
        n.METRIC_DIALPLAN_APPLICATIONS,
        False,
        "{application}",
        "Dialplan applications started and completed",
    ),
    (
        "dtmf_received",
        n.METRIC_DTMF_RECEIVED,
        False,
        "{digit}",
        "DTMF events received, by source (RTP, INBAND_AUDIO, ENDPOINT, APP); never by digit",
    ),
    (
        "bridge_events",
        n.METRIC_BRIDGE_EVENTS,
        False,
        "{event}",
        "CHANNEL_BRIDGE (established) and CHANNEL_UNBRIDGE (unbridged) events",
    ),
    (
        "transfers",
        n.METRIC_TRANSFERS,
        False,
        "{transfer}",
        "Transfers seen in sofia::transferor / sofia::transferee events",
    ),
    ("codec_changes", n.METRIC_CODEC_CHANGES, False, "{event}", "CODEC events by codec names"),
    (
        "handlers",
        n.METRIC_HANDLERS,
        False,
        "{call}",
        "Event handler calls by event name and result",
    ),
)


class Tally:
    """One connection's per-command and per-event counts, each a dict from labels to a
    running total.

    Written only by the connection's own thread (``counts[key] = counts.get(key, 0) + n``);
    read by :class:`Instruments` when a reader collects, by copying each dict (atomic in
    CPython). Label sets are the same small closed sets the counters always had.
    """

    __slots__ = (
        "bridge_events",
        "calls_active",
        "codec_changes",
        "commands_sent",
        "dialplan_applications",
        "dtmf_received",
        "events_received",
        "events_without_sip_call_id",
        "handlers",
        "hangup_causes",
        "hangup_causes_q850",
        "transfers",
    )

    def __init__(self) -> None:
        self.commands_sent: dict[TallyKey, int] = {}
        self.events_received: dict[TallyKey, int] = {}
        self.events_without_sip_call_id: dict[TallyKey, int] = {}
        self.calls_active: dict[TallyKey, int] = {}
        self.hangup_causes: dict[TallyKey, int] = {}
        self.hangup_causes_q850: dict[TallyKey, int] = {}
        self.dialplan_applications: dict[TallyKey, int] = {}
        self.dtmf_received: dict[TallyKey, int] = {}
        self.bridge_events: dict[TallyKey, int] = {}
        self.transfers: dict[TallyKey, int] = {}
        self.codec_changes: dict[TallyKey, int] = {}
        self.handlers: dict[TallyKey, int] = {}

    def add(self, which: str, amount: int, labels: Mapping[str, str]) -> None:
        counts: dict[TallyKey, int] = getattr(self, which)
        key = tuple(labels.items())
        counts[key] = counts.get(key, 0) + amount
