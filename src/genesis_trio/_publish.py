"""Public names for what private modules define.

Imported by every public package (``protocol`` included), so it imports
nothing of ours.
"""

from __future__ import annotations

import inspect

__all__ = ["publish"]


def publish(namespace: dict[str, object]) -> None:
    """Give the public classes and functions of a package its public module path.

    They are defined in private modules (``genesis_trio._exceptions``); a
    traceback, a ``repr`` or a docs page should say ``genesis_trio.ChannelHangup``.
    A name keeps the path of the outermost package that re-exports it, so a
    package imported later (``genesis_trio`` after ``genesis_trio.group``)
    overrides only names defined below itself.
    """
    package = namespace["__name__"]
    assert isinstance(package, str)
    exported = namespace.get("__all__", ())
    assert isinstance(exported, list | tuple)
    for name in exported:
        value = namespace.get(name)
        if not isinstance(value, type) and not inspect.isfunction(value):
            continue
        if getattr(value, "__module__", "").startswith(package + "."):
            value.__module__ = package
