"""Scripted callees: what the far end of an originated call does."""

from __future__ import annotations

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
    """

    answer_after: float | None = 0.0
    reject_cause: str | None = None
    hangup_after: float | None = None
    early_media: bool = False
    dtmf: str = ""
    dtmf_after: float = 1.0

    def __post_init__(self) -> None:
        if any(digit not in "0123456789*#ABCDabcd" for digit in self.dtmf):
            raise ValueError(f"not DTMF digits: {self.dtmf!r}")
        for name in ("answer_after", "hangup_after", "dtmf_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")
        if self.reject_cause is not None and (
            not self.reject_cause or any(c.isspace() for c in self.reject_cause)
        ):
            raise ValueError("reject_cause must be a FreeSWITCH cause name such as USER_BUSY")
