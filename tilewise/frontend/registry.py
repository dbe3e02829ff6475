"""The table of the tile language's functions: `@builtin(name)` registers a lowering rule
`impl(builder, *args, **kwargs)` and makes the host-side stub exported as `tw.<name>`. builtins.py and
memory.py fill it; lowering.py reads it."""
from __future__ import annotations

import functools

from ..errors import TileError

BUILTINS = {}  # public stub -> lowering rule
PUBLIC = {}    # name -> public stub, exported as tilewise.<name>


def builtin(name, host=None):
    def register(impl):
        def stub(*args, **kwargs):
            if host is not None:
                return host(*args, **kwargs)
            raise TileError(f"tw.{name}() can only be used inside a @tw.kernel function")
        functools.update_wrapper(stub, impl)
        stub.__name__ = stub.__qualname__ = name
        stub.__module__ = "tilewise"
        BUILTINS[stub] = impl
        PUBLIC[name] = stub
        return impl
    return register
