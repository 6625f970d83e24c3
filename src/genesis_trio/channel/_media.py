"""Media on a channel: playback, say, play_and_get_digits, record.

Each is a dialplan application run through ``_applications.py``: leaving one
early (its ``timeout``, the caller's cancel scope) stops it on the switch.
"""

# The API gives every blocking operation a ``timeout=``: it becomes the
# deadline of the operation's own cancel scope (see _outcome.py), not a sleep.
# ruff: noqa: ASYNC109

from __future__ import annotations

from typing import Literal, overload

from .. import tracing
from ..protocol import Event
from ..protocol import _encoding as encoding
from ._control import CallControl

__all__ = ["Media"]


def _milliseconds(seconds: float) -> str:
    return str(max(0, round(seconds * 1000)))


# play_and_get_digits reads its digits back with get_variable when the
# completion event does not carry them: media builds on call control.
class Media(CallControl):
    """Prompts, digit collection and recording."""

    @overload
    async def playback(
        self, path: str, *, block: Literal[True] = True, timeout: float | None = None
    ) -> Event: ...
    @overload
    async def playback(
        self, path: str, *, block: Literal[False], timeout: float | None = None
    ) -> str: ...
    async def playback(
        self, path: str, *, block: bool = True, timeout: float | None = None
    ) -> Event | str:
        """Play a file or stream; blocking, returns the completion (see :meth:`execute`).

        Leaving early (``timeout``, an enclosing ``move_on_after``, a
        cancelled task group) stops the playback on the switch.
        """
        span = tracing.channel_playback(self.uuid, path, block=block, connection=self._connection)
        with self._operation(span, "playback", timeout):
            if not block:
                return await self._send_application("playback", path)
            return await self._run_application("playback", path)

    async def say(
        self,
        text: str,
        *,
        module: str = "en",
        kind: str = "NUMBER",
        method: str = "pronounced",
        gender: str | None = None,
        timeout: float | None = None,
    ) -> Event:
        """Say a number, date, ... with the ``say`` application and its sound files."""
        # say splits its argument on spaces (switch_separate_string): each word
        # is encoded for that, the text included (docs/security.md).
        words = [
            encoding.app_word(value, what)
            for value, what in ((module, "module"), (kind, "kind"), (method, "method"))
        ]
        if gender is not None:
            words.append(encoding.app_word(gender, "gender"))
        words.append(encoding.app_word(text, "say text"))
        span = tracing.channel_say(
            self.uuid, module=module, kind=kind, method=method, connection=self._connection
        )
        with self._operation(span, "say", timeout):
            return await self._run_application("say", " ".join(words))

    async def play_and_get_digits(
        self,
        file: str,
        *,
        min_digits: int = 1,
        max_digits: int = 1,
        tries: int = 3,
        input_timeout: float = 5.0,
        terminators: str = "#",
        invalid_file: str = "silence_stream://250",
        variable: str = "pagd_digits",
        regexp: str = r"\d+",
        digit_timeout: float | None = None,
        timeout: float | None = None,
    ) -> str:
        """Play ``file`` and collect digits; returns them (``""`` when none were valid).

        ``input_timeout`` / ``digit_timeout`` are FreeSWITCH's waits for the
        first and the next digit (seconds); ``timeout`` bounds the whole
        operation. The caller hanging up raises :class:`ChannelHangup` at once.
        """
        if not 0 <= min_digits <= max_digits or tries < 1:
            raise ValueError("need 0 <= min_digits <= max_digits and tries >= 1")
        encoding.variable_name(variable)
        arguments = " ".join(
            [
                str(min_digits),
                str(max_digits),
                str(tries),
                _milliseconds(input_timeout),
                encoding.app_word(terminators or "none", "terminators"),
                encoding.app_word(file, "file"),
                encoding.app_word(invalid_file, "invalid_file"),
                variable,
                encoding.app_word(regexp, "regexp"),
                _milliseconds(input_timeout if digit_timeout is None else digit_timeout),
            ]
        )
        span = tracing.channel_play_and_get_digits(
            self.uuid, file, tries=tries, connection=self._connection
        )
        with self._operation(span, "play_and_get_digits", timeout):
            completion = await self._run_application("play_and_get_digits", arguments)
            digits = completion.get(f"variable_{variable}")
            if digits is None:
                digits = await self.get_variable(variable)
            return digits or ""

    @overload
    async def record(
        self,
        path: str,
        *,
        time_limit: int | None = None,
        silence_threshold: int | None = None,
        silence_hits: int | None = None,
        block: Literal[True] = True,
        timeout: float | None = None,
    ) -> Event: ...
    @overload
    async def record(
        self,
        path: str,
        *,
        time_limit: int | None = None,
        silence_threshold: int | None = None,
        silence_hits: int | None = None,
        block: Literal[False],
        timeout: float | None = None,
    ) -> str: ...
    async def record(
        self,
        path: str,
        *,
        time_limit: int | None = None,
        silence_threshold: int | None = None,
        silence_hits: int | None = None,
        block: bool = True,
        timeout: float | None = None,
    ) -> Event | str:
        """Record the caller to ``path`` on the FreeSWITCH host (the ``record`` application).

        It ends at ``time_limit`` seconds, after ``silence_hits`` of silence
        below ``silence_threshold``, on a terminator digit, or when stopped;
        cancelling it stops the recording (``uuid_break``).
        """
        words = [encoding.app_word(path, "path")]
        if time_limit is not None or silence_threshold is not None:
            words.append(str(int(time_limit or 0)))
        if silence_threshold is not None:
            words.append(str(int(silence_threshold)))
            if silence_hits is not None:
                words.append(str(int(silence_hits)))
        with self._operation(None, "record", timeout):
            if not block:
                return await self._send_application("record", " ".join(words))
            return await self._run_application("record", " ".join(words))
