"""Scripted callees: what the far end of an originated call does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Destination"]


@dataclass(frozen=True, slots=True)
class Destination:
    """How a dialled destination behaves.

    ``answer_after``: seconds of ringing before the callee answers (``0`` answers
    at once, without ringing; ``None`` never answers, so the originate ends with
    ``NO_ANSWER`` when ``originate_timeout`` runs out). With ``reject_cause``
    the callee refuses the call with that cause instead, after ``answer_after``
    seconds of ringing (``0``/``None``: at once). ``hangup_after``: seconds
    after the answer at which the callee hangs up (``NORMAL_CLEARING``).
    ``early_media``: the callee sends early media (183) before answering; as
    on a real switch the originate succeeds at that point. ``dtmf``: digits the
    far end presses ``dtmf_after`` seconds after the call is answered (they
    queue on the channel until an application such as ``play_and_get_digits``
    collects them, as on FreeSWITCH).

    ``applications``: the call is a loopback pair, as ``loopback/<ext>/<context>``
    is on FreeSWITCH: the originated ``-a`` leg, and a ``-b`` leg that runs these
    ``(application, data)`` pairs as the extension of a dialplan would (``answer``,
    ``ring_ready``, ``pre_answer``, ``playback``, ``hangup``, ``park``, ``socket``...);
    the ``-a`` leg rings, gets early media, is answered and hangs up as the ``-b`` leg
    does. An empty sequence matches no extension: both legs hang up with
    ``NO_ROUTE_DESTINATION``. The other timing fields do not apply to such a pair.

    ``create_late``: fire the originated leg's ``CHANNEL_CREATE`` (and
    ``CHANNEL_ORIGINATE``) after its ``CHANNEL_ANSWER`` (or its early media, or its
    hangup, whichever comes first), as a real FreeSWITCH does for about one loopback
    call in 50: code that follows a channel must tolerate that order.

    ``setup_after``: seconds the originate takes before the leg exists at all (no event,
    ``uuid_kill`` answers ``-ERR No such channel``), as when FreeSWITCH's job thread is
    slow to start or a SIP lookup takes time.
    """

    answer_after: float | None = 0.0
    reject_cause: str | None = None
    hangup_after: float | None = None
    early_media: bool = False
    dtmf: str = ""
    dtmf_after: float = 1.0
    applications: Sequence[tuple[str, str]] | None = None
    create_late: bool = False
    setup_after: float = 0.0

    def __post_init__(self) -> None:
        if self.applications is not None:
            # Frozen: keep an immutable copy of what the caller passed.
            object.__setattr__(
                self, "applications", tuple((str(a), str(d)) for a, d in self.applications)
            )
        if any(digit not in "0123456789*#ABCDabcd" for digit in self.dtmf):
            raise ValueError(f"not DTMF digits: {self.dtmf!r}")
        for name in ("answer_after", "hangup_after", "dtmf_after", "setup_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")
        if self.reject_cause is not None and (
            not self.reject_cause or any(c.isspace() for c in self.reject_cause)
        ):
            raise ValueError("reject_cause must be a FreeSWITCH cause name such as USER_BUSY")
