"""Signals between the fake's channels and their applications."""

from __future__ import annotations

__all__ = ["MediaBroken"]


class MediaBroken(Exception):
    """A ``uuid_break`` ended the media wait of an application."""
