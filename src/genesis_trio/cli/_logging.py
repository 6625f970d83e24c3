"""Log set-up for the CLI: text or JSON lines, each with the call's uuid and the span's ids."""

from __future__ import annotations

import logging
import sys
from typing import Any

from opentelemetry import trace

from .._util import current_call_uuid
from ._run import CLIError

__all__ = ["configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(call)s: %(message)s"


class CallContextFilter(logging.Filter):
    """Adds ``call_uuid``, ``trace_id`` and ``span_id`` (None when unknown) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        uuid = getattr(record, "call_uuid", None) or current_call_uuid.get()
        record.call_uuid = uuid
        record.call = f" [{uuid}]" if uuid else ""
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        else:
            record.trace_id = record.span_id = None
        return True


def _json_formatter() -> logging.Formatter:
    try:
        from pythonjsonlogger.core import RESERVED_ATTRS
        from pythonjsonlogger.json import JsonFormatter
    except ImportError:
        raise CLIError(
            "--log-format json needs python-json-logger: install genesis-trio[ops]"
        ) from None
    fields: list[str] = [
        "asctime", "levelname", "name", "message", "call_uuid", "trace_id", "span_id",
    ]  # fmt: skip
    formatter: Any = JsonFormatter(
        fields,
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        # ``call`` is the text format's rendering of call_uuid.
        reserved_attrs=[*RESERVED_ATTRS, "call"],
    )
    return formatter  # type: ignore[no-any-return]


def configure_logging(level: str, log_format: str) -> None:
    """Send every log record to stderr, one line each, in ``log_format`` (text or json)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(CallContextFilter())
    handler.setFormatter(
        _json_formatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
