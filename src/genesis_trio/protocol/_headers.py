"""An immutable, ordered, multi-valued header mapping."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar, overload

_T = TypeVar("_T")

__all__ = ["Headers", "header_int"]

# Longer than any length or counter FreeSWITCH writes, short enough that int()
# never meets its digit limit.
_MAX_DIGITS = 18


def header_int(value: str | None) -> int | None:
    """A header value as a non-negative integer, or None if it is not one.

    Only ASCII digits count: ``str.isdigit`` also accepts characters such as
    "²" that ``int()`` then rejects, which a peer could use to crash a reader.
    """
    if value is None or not value or len(value) > _MAX_DIGITS:
        return None
    if not (value.isascii() and value.isdigit()):
        return None
    return int(value)


class Headers(Mapping[str, str]):
    """Read-only ESL headers.

    Indexing returns the first value of a header, as FreeSWITCH's own
    ``switch_event_get_header`` does; :meth:`get_all` returns every value of a
    header that appeared more than once. Names are case-sensitive, as they are
    on the wire. The common single-valued case costs one dict.
    """

    __slots__ = ("_extra", "_first")

    _first: dict[str, str]
    _extra: dict[str, list[str]] | None

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        if isinstance(items, Headers):
            pairs: Iterable[tuple[str, str]] = items.multi_items()
        elif isinstance(items, Mapping):
            pairs = items.items()
        else:
            pairs = items
        first: dict[str, str] = {}
        extra: dict[str, list[str]] | None = None
        for name, value in pairs:
            if name in first:
                if extra is None:
                    extra = {}
                extra.setdefault(name, []).append(value)
            else:
                first[name] = value
        self._first = first
        self._extra = extra

    @classmethod
    def _adopt(cls, first: dict[str, str], extra: dict[str, list[str]] | None) -> Headers:
        """Wrap dicts the parser built, without copying them (hot path)."""
        self = cls.__new__(cls)
        self._first = first
        self._extra = extra
        return self

    def __getitem__(self, name: str) -> str:
        return self._first[name]

    def __contains__(self, name: object) -> bool:
        return name in self._first

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, default: str, /) -> str: ...
    @overload
    def get(self, name: str, default: _T, /) -> str | _T: ...
    def get(self, name: str, default: object = None, /) -> object:
        return self._first.get(name, default)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in the order received (empty if absent)."""
        if name not in self._first:
            return []
        values = [self._first[name]]
        if self._extra is not None and name in self._extra:
            values.extend(self._extra[name])
        return values

    def multi_items(self) -> Iterator[tuple[str, str]]:
        """Every (name, value) pair, repeated headers included."""
        extra = self._extra
        for name, value in self._first.items():
            yield name, value
            if extra is not None and name in extra:
                for more in extra[name]:
                    yield name, more

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._first == other._first and (self._extra or {}) == (other._extra or {})
        if isinstance(other, Mapping):
            return not self._extra and self._first == dict(other)
        return NotImplemented

    def __hash__(self) -> int:  # Mapping sets __hash__ = None; keep it unhashable explicitly.
        raise TypeError("Headers is unhashable")

    def __repr__(self) -> str:
        return f"Headers({list(self.multi_items())!r})"
