"""Rendering finished spans as an indented tree (the demo and the console example)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from opentelemetry.trace import SpanContext

from . import _names as n

__all__ = ["format_span_tree"]


class _SpanEvent(Protocol):
    @property
    def name(self) -> str: ...


class FinishedSpan(Protocol):
    """What we read from an SDK ``ReadableSpan`` (structural: no SDK import here)."""

    @property
    def name(self) -> str: ...
    @property
    def context(self) -> SpanContext | None: ...
    @property
    def parent(self) -> SpanContext | None: ...
    @property
    def start_time(self) -> int | None: ...
    @property
    def end_time(self) -> int | None: ...
    @property
    def attributes(self) -> Mapping[str, Any] | None: ...
    @property
    def events(self) -> Sequence[_SpanEvent]: ...


_VALUE_LIMIT = 60


def _describe(span: FinishedSpan, show_attributes: bool) -> str:
    text = span.name
    if span.start_time is not None and span.end_time is not None:
        text += f"  {(span.end_time - span.start_time) / 1e6:.2f} ms"
    if show_attributes and span.attributes:
        shown = [
            f"{key}={_short(value)}"
            for key, value in span.attributes.items()
            if not key.startswith(n.EVENT_HEADER_PREFIX)
        ]
        if shown:
            text += "  [" + ", ".join(shown) + "]"
    if span.events:
        text += "  events: " + ", ".join(event.name for event in span.events)
    return text


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= _VALUE_LIMIT else text[: _VALUE_LIMIT - 1] + "…"


def format_span_tree(spans: Iterable[FinishedSpan], *, attributes: bool = True) -> str:
    """Finished spans as one tree per trace, children in start order.

    ``event.header.*`` attributes are left out (there are ~100 per event); a span
    whose parent is not among ``spans`` is shown as a root of its trace.
    """
    spans = list(spans)
    by_id: dict[tuple[int, int], FinishedSpan] = {}
    for span in spans:
        if span.context is not None:
            by_id[(span.context.trace_id, span.context.span_id)] = span
    children: dict[tuple[int, int], list[FinishedSpan]] = {}
    roots: list[FinishedSpan] = []
    for span in spans:
        parent = span.parent
        key = (parent.trace_id, parent.span_id) if parent is not None else None
        if key is not None and key in by_id:
            children.setdefault(key, []).append(span)
        else:
            roots.append(span)

    def start(span: FinishedSpan) -> int:
        return span.start_time or 0

    lines: list[str] = []

    def walk(span: FinishedSpan, prefix: str, last: bool) -> None:
        lines.append(prefix + ("└─ " if last else "├─ ") + _describe(span, attributes))
        context = span.context
        kids = (
            sorted(children.get((context.trace_id, context.span_id), []), key=start)
            if context is not None
            else []
        )
        for index, child in enumerate(kids):
            walk(child, prefix + ("   " if last else "│  "), index == len(kids) - 1)

    traces: dict[int, list[FinishedSpan]] = {}
    for root in sorted(roots, key=start):
        trace_id = root.context.trace_id if root.context is not None else 0
        traces.setdefault(trace_id, []).append(root)
    for trace_id, trace_roots in traces.items():
        lines.append(f"trace {trace_id:032x}")
        for index, root in enumerate(trace_roots):
            walk(root, "", index == len(trace_roots) - 1)
    return "\n".join(lines)
