"""Launch arguments -> specialisation facts and host values, with every check done before any work."""
from __future__ import annotations

import numbers

import numpy as np

from ..errors import TileLaunchError
from ..frontend.kernel import ArrayListSpec, ArraySpec, ConstSpec, ScalarSpec
from ..ir import dtypes as D
from ..support.hostmem import data_pointer

_CPU_DLPACK = 1


SUPPORTED_DTYPES = ", ".join(["bool", "int8/16/32/64", "uint8/16/32/64", "float16", "bfloat16", "float32",
                              "float64", "float8_e4m3fn", "float8_e5m2"])


def _torch_view(x):
    """PyTorch CPU tensors of dtypes NumPy lacks travel as same-width integers, then are relabelled."""
    name = str(x.dtype).rsplit(".", 1)[-1]
    dt = D.from_name(name) if name in ("bfloat16", "float8_e4m3fn", "float8_e5m2") else None
    if dt is None:
        return None
    import torch
    raw = x.view(torch.int16 if dt.bits == 16 else torch.uint8)
    return np.from_dlpack(raw.detach()).view(dt.np)


def to_host_array(x, what):
    """A NumPy view of a host array argument (never a copy), or a TileLaunchError."""
    if isinstance(x, np.ndarray):
        arr = x
    elif hasattr(x, "__cuda_array_interface__") and not hasattr(x, "__array_interface__"):
        raise TileLaunchError(f"{what} is a CUDA array, but no CUDA backend is available in this build; "
                              "pass host (NumPy) arrays, or install tilewise[cuda] on a GPU machine")
    elif hasattr(x, "__dlpack__"):
        try:
            dev = x.__dlpack_device__()[0]
        except Exception:
            dev = _CPU_DLPACK
        if dev != _CPU_DLPACK:
            raise TileLaunchError(f"{what} lives on a device (DLPack device type {dev}) that no available "
                                  "backend handles; pass host arrays")
        if type(x).__module__.startswith("torch"):
            arr = _torch_view(x)
            if arr is None:
                arr = np.from_dlpack(x.detach() if hasattr(x, "detach") else x)
        else:
            arr = np.from_dlpack(x)
    elif hasattr(x, "__array_interface__"):
        arr = np.asarray(x)
    else:
        raise TileLaunchError(f"{what} must be an array, got {type(x).__name__}")
    if arr.dtype == object or D.from_numpy(arr.dtype) is None:
        raise TileLaunchError(f"{what} has dtype {arr.dtype}, which tile kernels do not support; convert it "
                              f"(e.g. .astype(np.float32)) to one of: {SUPPORTED_DTYPES}")
    if not strides_fit(arr):
        raise stride_error(what, arr)
    return arr


def stride_error(what, arr):
    """The one message for an array (host or device) whose strides are not whole elements."""
    return TileLaunchError(f"{what} has strides {tuple(arr.strides)} (bytes); a stride that is not a multiple of "
                           f"its element size {arr.itemsize} ({np.dtype(arr.dtype)}) does not address whole "
                           "elements, on any backend: pass a copy (np.ascontiguousarray)")


def strides_fit(arr):
    """Whether every stride is a whole number of elements (the cpu and cuda backends address in elements,
    so the rule is the same on all). NumPy's `aligned` flag already says so, cheaply, for the strides of
    dimensions longer than one when the dtype's alignment is its size (true of every supported dtype); a
    dimension of extent 0 or 1, or an unaligned data pointer, takes the stride-by-stride test."""
    shape = arr.shape
    if arr.flags.aligned and 1 not in shape and 0 not in shape:
        return True
    size = arr.itemsize
    return not any(st % size for st in arr.strides)


def array_spec(arr: np.ndarray) -> ArraySpec:
    return ArraySpec(D.from_numpy(arr.dtype), arr.ndim, not arr.ndim or arr.strides[-1] == arr.itemsize,
                     arr.ctypes.data % 16 == 0)


def backend_view(arr):
    """What the backends get: a 0-d array travels as its one-element 1-d view (frontend/values.ArrayV)."""
    return arr.reshape(1) if arr.ndim == 0 else arr


def _is_array(x):
    if isinstance(x, np.generic):  # NumPy scalars expose __array_interface__ too, but are scalars
        return False
    return isinstance(x, np.ndarray) or hasattr(x, "__array_interface__") or hasattr(x, "__dlpack__") \
        or hasattr(x, "__cuda_array_interface__")


def _scalar_spec(x):
    if isinstance(x, np.generic):
        dt = D.from_numpy(x.dtype)
        if dt is None:
            return None
        return ScalarSpec(dt), x
    if isinstance(x, bool):
        return ScalarSpec(D.bool_), x
    if isinstance(x, numbers.Integral):
        v = int(x)
        if not -2**63 <= v < 2**64:
            raise TileLaunchError(f"integer {v} does not fit in 64 bits")
        return ScalarSpec(D.scalar_dtype(v) if v < 2**63 else D.uint64), v
    if isinstance(x, numbers.Real):
        return ScalarSpec(D.float32), float(x)
    return None


def _const_value(name, x, annotation_type):
    """A Constant argument's value. Python's numeric tower decides what an annotated type accepts, as
    cuTile (which takes bool, int and float for any Constant) does for these: Constant[int] takes a
    bool, Constant[float] an int or bool; the value is converted to the annotated type, so 4, True and
    np.int64(4) specialise alike."""
    try:
        hash(x)
    except TypeError:
        raise TileLaunchError(f"Constant parameter '{name}' must be hashable, got {type(x).__name__}; pass an "
                              "int, float, bool, str or tuple (convert lists with tuple(...))") from None
    is_bool = isinstance(x, (bool, np.bool_))
    check = {int: lambda: isinstance(x, numbers.Integral) or is_bool,
             bool: lambda: is_bool,
             float: lambda: isinstance(x, numbers.Real) or is_bool}.get(annotation_type)
    if check is not None and not check():
        article = "an" if annotation_type is int else "a"
        raise TileLaunchError(f"Constant[{annotation_type.__name__}] parameter '{name}' got "
                              f"{type(x).__name__} {x!r}; pass {article} {annotation_type.__name__}")
    if check is not None:
        return annotation_type(x)
    return x.item() if isinstance(x, np.generic) else x


_ARRAY_SPECS = {}  # (dtype, ndim, unit_stride, aligned) -> ArraySpec, so a cached launch builds none
_CONST_SPECS = {}  # (type, value) -> ConstSpec


def _fast_array_spec(x):
    """The spec of a plain, already validated kind of ndarray, or None (then the full checks run)."""
    if x.ndim == 0 or not strides_fit(x):
        return None
    return _ARRAY_SPECS.get((x.dtype, x.ndim, x.strides[-1] == x.itemsize, data_pointer(x) % 16 == 0))


def _remember_array_spec(arr, spec):
    _ARRAY_SPECS[(arr.dtype, arr.ndim, spec.unit_stride, spec.aligned)] = spec


def _param_plan(kernel):
    """Per parameter: (name, is_constant, annotated type), computed once per kernel."""
    plan = kernel.__dict__.get("_param_plan")
    if plan is None:
        consts = kernel.constant_params
        plan = tuple((name, name in consts, consts.get(name)) for name in kernel.signature.parameters)
        kernel.__dict__["_param_plan"] = plan
    return plan


def _plan_for(kernel, args):
    """The kernel's parameter plan, once `args` is a tuple or list with one value per parameter."""
    if not isinstance(args, (tuple, list)):
        raise TileLaunchError(f"kernel arguments must be a tuple, got {type(args).__name__}")
    plan = _param_plan(kernel)
    if len(args) != len(plan):
        raise TileLaunchError(f"kernel '{kernel.__name__}' takes {len(plan)} arguments "
                              f"({', '.join(p[0] for p in plan)}), got {len(args)}")
    return plan


def classify(kernel, args):
    """(specs, host values in IR parameter order, names of those parameters)."""
    plan = _plan_for(kernel, args)
    specs, values, names = [], [], []
    for (name, is_const, ann), x in zip(plan, args):
        # Fast paths for the common cases of a cached launch; anything else takes the checks below.
        if type(x) is np.ndarray:
            spec = _fast_array_spec(x)
            if spec is not None:
                specs.append(spec)
                values.append(x)
                names.append(name)
                continue
        elif is_const and type(x) is ann and ann in (int, float, bool) and x == x:  # NaN never hits a cache
            spec = _CONST_SPECS.get((ann, x))
            if spec is None:
                spec = _CONST_SPECS.setdefault((ann, x), ConstSpec(_const_value(name, x, ann)))
            specs.append(spec)
            continue
        _classify_one(kernel, name, is_const, ann, x, specs, values, names)
    return tuple(specs), values, names


def _classify_one(kernel, name, is_const, ann, x, specs, values, names):
    """The full checks for one argument; appends its spec (and its host values unless constant)."""
    what = f"argument '{name}' of kernel '{kernel.__name__}'"
    if is_const:
        specs.append(ConstSpec(_const_value(name, x, ann)))
        return
    if _is_array(x):
        if is_device_array(x):
            raise DeviceArguments
        arr = to_host_array(x, what)
        spec = array_spec(arr)
        if arr.ndim:
            _remember_array_spec(arr, spec)
        specs.append(spec)
        values.append(backend_view(arr))
        names.append(name)
        return
    if isinstance(x, (list, tuple)):
        if not x:
            raise TileLaunchError(f"{what} is an empty sequence")
        if any(is_device_array(e) for e in x):
            raise DeviceArguments
        if not all(_is_array(e) for e in x):
            raise TileLaunchError(f"{what} is a {type(x).__name__} of "
                                  f"{type(next(e for e in x if not _is_array(e))).__name__}; an array is "
                                  "expected here (wrap it with np.asarray) or a list/tuple of arrays")
        arrs = [to_host_array(e, f"{what}[{i}]") for i, e in enumerate(x)]
        specs.append(ArrayListSpec(tuple(array_spec(a) for a in arrs)))
        values.extend(backend_view(a) for a in arrs)
        names.extend(f"{name}[{i}]" for i in range(len(arrs)))
        return
    s = _scalar_spec(x)
    if s is not None and s[0].dtype.is_int and name in kernel.int64_scalars:  # cuTile's ScalarInt64
        if not -2**63 <= s[1] < 2**63:
            raise TileLaunchError(f"{what} is annotated ScalarInt64 but {s[1]} does not fit in int64")
        s = (ScalarSpec(D.int64), int(s[1]))
    if s is None:
        raise TileLaunchError(f"{what} has unsupported type {type(x).__name__}; pass arrays, "
                              "numbers, or lists of arrays")
    specs.append(s[0])
    values.append(s[1])
    names.append(name)


class DeviceArguments(Exception):  # noqa: N818 - a signal, not an error
    """Raised by `classify` on meeting a device array: the launch takes the device path instead (so the
    host fast path pays nothing for it)."""


def is_device_array(x):
    """Whether `x` is CUDA memory: a tw.DeviceArray, anything with `__cuda_array_interface__` (CuPy,
    PyTorch CUDA tensors), or a `__dlpack__` producer on a CUDA device."""
    from .array import DeviceArray
    if isinstance(x, DeviceArray):
        return True
    if hasattr(x, "__cuda_array_interface__") and not hasattr(x, "__array_interface__"):
        return True
    if hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__"):
        from .dlpack import CUDA_DEVICE_TYPES
        try:
            return x.__dlpack_device__()[0] in CUDA_DEVICE_TYPES
        except Exception:
            return False
    return False


def normalize_grid(grid):
    if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        grid = (grid,)
    if not isinstance(grid, (tuple, list)) or not 1 <= len(grid) <= 3:
        raise TileLaunchError(f"grid must be an int or a tuple of 1 to 3 ints, got {grid!r}")
    for g in grid:
        if isinstance(g, bool) or not isinstance(g, (int, np.integer)):
            raise TileLaunchError(f"grid entries must be ints, got {grid!r}; compute block counts with "
                                  "tw.cdiv(n, tile) or int(...)")
        if g < 1:
            raise TileLaunchError(f"grid {tuple(grid)} is empty or negative; every dimension must be >= 1")
    g = tuple(int(x) for x in grid) + (1,) * (3 - len(grid))
    if g[0] * g[1] * g[2] >= 2**31:
        raise TileLaunchError(f"grid {g} has more than 2**31 blocks")
    return g
