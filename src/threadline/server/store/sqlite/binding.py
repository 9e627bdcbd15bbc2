"""Binding ``None`` and ``bytes`` to a statement without the adaptation protocol's detour.

The DB-API module binds ``int``, ``float`` and ``str`` straight away, but hands every
other value (``None`` and ``bytes`` included) to its adaptation protocol first: a
registry lookup, then ``__adapt__`` looked up on the protocol and ``__conform__`` on the
value, each miss an ``AttributeError`` made and dropped. That detour costs ~0.5 µs a
value in the standard library's module and ~1.4 µs in ``pysqlite3``'s (an older copy of
the same code), and a span row binds ~5 ``None`` and ~2 ``bytes``: it was most of why
``pysqlite3-binary`` wrote slower than the standard module (docs/benchmarks.md, "The
SQLite engine: the module, not the engine").

An adapter registered for the exact type is found by the first lookup and ends the
detour, and these two give the value back unchanged, so what is stored is the same
(NULL, BLOB). Registering for ``NoneType`` and ``bytes`` leaves the module's fast path
for ``int``, ``float`` and ``str`` as it is (only adapting those turns it off).
"""

from __future__ import annotations

from types import ModuleType

# C callables, so an adapter costs one call and no Python frame: ``bytes(b)`` is ``b``
# for an exact ``bytes``; a lookup in an empty dict gives ``None`` for any key.
_NOTHING: dict[object, None] = {}
_SAME_BYTES = bytes
_SAME_NONE = _NOTHING.get


def skip_adaptation(module: ModuleType) -> None:
    """Register the adapters above with a DB-API SQLite ``module`` (once per process;
    registering again replaces them)."""
    module.register_adapter(type(None), _SAME_NONE)
    module.register_adapter(bytes, _SAME_BYTES)
