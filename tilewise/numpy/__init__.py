"""tilewise.numpy: change `import numpy as np` to `import tilewise.numpy as np`.

Element-wise operations, casts, `where` and the reductions over them are lazy: chains of them run as one
generated tile kernel each, through the same compiler as a user's kernel, over all CPU cores. NumPy's
dtypes, constants and types are NumPy's own objects. A NumPy function tilewise.numpy does not run itself
yet runs in NumPy on host data, returns tilewise.numpy arrays, and says so (`fallbacks()`,
`FallbackWarning`). docs/numpy.md has the rules."""
from __future__ import annotations

import numpy as _np

import sys as _sys

from . import dispatch, fft, linalg, random
from .array import NAMESPACE as _NAMESPACE
from .array import ndarray
from .devices import default_device, device, set_device
from .explain import explain
from . import fallback as _fallback
from .fallback import FallbackWarning, fallbacks
from .functions import *  # noqa: F403 - the native functions
from .functions import CREATORS as _CREATORS
from .functions import NATIVE as _NATIVE
from .functions import UFUNC_FUNCTIONS as _UFUNCS

# NumPy's own objects: dtypes, scalar types, constants, errstate, finfo...
for _name in ("bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
              "float32", "float64", "complex64", "complex128", "intp", "uintp", "dtype", "generic", "number",
              "integer", "signedinteger", "unsignedinteger", "floating", "complexfloating", "inexact",
              "newaxis", "pi", "e", "inf", "nan", "euler_gamma", "finfo", "iinfo", "errstate", "can_cast",
              "result_type", "promote_types", "isdtype", "issubdtype"):
    globals()[_name] = getattr(_np, _name)
bool = _np.bool  # noqa: A001 - the array API's name
# The Array API's spellings of NumPy's ufuncs (acos for arccos...) and plain aliases.
for _alias, _target in {"abs": "absolute", "acos": "arccos", "asin": "arcsin", "atan": "arctan",
                        "atan2": "arctan2", "pow": "power", "bitwise_invert": "invert",
                        "bitwise_left_shift": "left_shift", "bitwise_right_shift": "right_shift",
                        "conj": None}.items():
    if _target in _UFUNCS:
        globals()[_alias] = _UFUNCS[_target]


_NAMESPACE.append(_sys.modules[__name__])


def __getattr__(name):
    """Any other NumPy name: NumPy's object where it is a type or constant, else a visible fallback."""
    try:
        obj = getattr(_np, name)
    except AttributeError:
        raise AttributeError(f"module 'tilewise.numpy' has no attribute '{name}'") from None
    if isinstance(obj, _np.ufunc) and obj.__name__ in _UFUNCS:
        value = _UFUNCS[obj.__name__]
    elif callable(obj) and not isinstance(obj, type):
        value = _fallback.wrapper(name, obj)
    else:
        value = obj
    globals()[name] = value
    return value


def native_functions():
    """The names tilewise.numpy runs itself (not as fallbacks)."""
    return sorted(_NATIVE | set(_CREATORS))
