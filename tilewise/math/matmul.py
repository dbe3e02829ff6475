"""nvmath-python's matmul, stateful (`Matmul`) and as one call (`matmul`): F(alpha * a @ b + beta * c)
with F the epilog, computed by the GEMM kernel family of gemm.py on the host backend."""
from __future__ import annotations

import numbers

import numpy as np

from . import gemm
from .epilogs import EpilogSpec
from .operands import as_2d, check_pair, squeeze_vectors, to_host, wrap_like
from .userfn import spec_of


def _scalar(value, acc, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Number):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    if acc == "int32":
        if not float(value).is_integer():
            raise TypeError(f"{name} = {value!r}: int8 operands accumulate in int32, so {name} must be an integer")
        return np.int32(value)
    if isinstance(value, complex):
        raise TypeError(f"{name} must be real, got {value!r}")
    return np.dtype(acc).type(value)


def _input(name, value, spec, batch, m, n, acc):
    """(structure entry, host value) of one epilog input: a runtime scalar, or an array view broadcast to
    batch + (m or 1, n or 1) (stride 0 where it broadcasts)."""
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return (name, "scalar", False), _scalar(value, acc, f"epilog_inputs['{name}']")
    x = to_host(value, f"epilog_inputs['{name}']")
    if x.ndim == 0:
        return (name, "scalar", False), _scalar(x.item(), acc, f"epilog_inputs['{name}']")
    if name in spec.row_inputs:  # nvmath's bias: one value per result row, (m,) or (m, 1)
        if x.ndim == 1:
            x = x[:, None]
        if x.shape[-1] != 1 or x.shape[-2] != m:
            raise ValueError(f"epilog {spec.name}: epilog_inputs['{name}'] has shape {tuple(value.shape)}; it "
                             f"needs one value per result row, shape ({m},) or ({m}, 1), for a result of shape "
                             f"{batch + (m, n)}")
    if x.ndim == 1:
        x = x[None, :]
    rows_full, cols_full = x.shape[-2] != 1, x.shape[-1] != 1
    target = batch + (m if rows_full else 1, n if cols_full else 1)
    try:
        view = np.broadcast_to(x, target) if x.shape != target else x
    except ValueError:
        raise ValueError(f"epilog {spec.name}: epilog_inputs['{name}'] has shape {x.shape}, which does not "
                         f"broadcast to the result's shape {batch + (m, n)}") from None
    if x.dtype.kind not in "biuf":
        raise TypeError(f"epilog {spec.name}: epilog_inputs['{name}'] has dtype {x.dtype}; it must be real")
    return (name, (rows_full, cols_full), x.dtype.kind == "f"), view


class Matmul:
    """nvmath.linalg.advanced.Matmul: plan once, execute as often as the operands change."""

    def __init__(self, a, b, c=None, *, alpha=None, beta=None, qualifiers=None, options=None, stream=None):
        if qualifiers is not None:
            raise NotImplementedError("matmul qualifiers (conjugation, structure) are not supported yet")
        self.options, self.stream = options, stream
        self._alpha, self._beta = alpha, beta
        self._planned = None
        self._set_operands(a, b, c)

    def _set_operands(self, a, b, c):
        self._template = a
        ha, hb = to_host(a, "a"), to_host(b, "b")
        self.batch, self.m, self.n, self.k, self.acc, self.result_dtype = check_pair(ha, hb)
        self._ndims = (ha.ndim, hb.ndim)
        ha, hb = as_2d(ha, hb)
        shape = self.batch + (self.m, self.n)
        self._a = np.broadcast_to(ha, self.batch + ha.shape[-2:]) if ha.shape[:-2] != self.batch else ha
        self._b = np.broadcast_to(hb, self.batch + hb.shape[-2:]) if hb.shape[:-2] != self.batch else hb
        self._c = None
        if c is not None:
            if self._beta is None:
                raise ValueError("matmul: operand c is given, so beta must be given too (as in nvmath)")
            hc = to_host(c, "c")
            if hc.ndim == 1:
                hc = hc[:, None] if hc.shape[0] == self.m and self.m != 1 else hc[None, :]
            try:
                self._c = np.broadcast_to(hc, shape)
            except ValueError:
                raise ValueError(f"matmul: operand c has shape {hc.shape}, which does not broadcast to the "
                                 f"result's shape {shape} (a {ha.shape} @ b {hb.shape})") from None
            if hc.dtype.kind not in "biuf":
                raise TypeError(f"matmul: operand c has dtype {hc.dtype}; it must be real")
        elif self._beta is not None and self._beta != 0:
            raise ValueError("matmul: beta is given but operand c is not")
        self.alpha = None if self._alpha is None else _scalar(self._alpha, self.acc, "alpha")
        self.beta = None if self._beta is None or c is None else _scalar(self._beta, self.acc, "beta")

    def plan(self, *, preferences=None, algorithms=None, epilog=None, epilog_inputs=None, stream=None):
        """Check the epilog and its inputs against the operands and choose the kernel (compiled at the
        first execute). Errors are raised here, before any work."""
        spec: EpilogSpec = spec_of(epilog)
        self._epilog = epilog
        given = dict(epilog_inputs or {})
        missing = [x for x in spec.inputs if x not in given]
        if missing:
            raise ValueError(f"epilog {spec.name} needs epilog_inputs {missing}; got {sorted(given) or 'none'}")
        unknown = [x for x in given if x not in spec.inputs + spec.optional]
        if unknown:
            raise ValueError(f"epilog {spec.name} takes no epilog_inputs {unknown}; it takes "
                             f"{list(spec.inputs + spec.optional) or 'none'}")
        entries, views = [], []
        for name in spec.inputs + spec.optional:
            if name in given:
                entry, value = _input(name, given[name], spec, self.batch, self.m, self.n, self.acc)
                entries.append(entry)
                views.append(value)
        self._spec, self._entries, self._inputs = spec, tuple(entries), views
        self._planned = (bool(self.batch), self.acc, self.alpha is not None, self._c is not None,
                         self._entries, len(spec.aux), spec.row_sum, spec.sum_a, spec.sum_b)
        if stream is not None:
            self.stream = stream
        return self

    def execute(self, *, algorithm=None, release_workspace=False, stream=None):
        """Run the planned multiply; returns the result, or (result, {name: auxiliary output}) for
        epilogs with auxiliary outputs, as nvmath does."""
        if self._planned is None:
            raise RuntimeError("Matmul.execute() before plan(); call plan() first (as in nvmath)")
        spec, batch, m, n = self._spec, self.batch, self.m, self.n
        out = np.empty(batch + (m, n), self.result_dtype)
        arrays = [self._a, self._b, out] + ([self._c] if self._c is not None else [])
        scalars = [x for x in (self.alpha, self.beta) if x is not None]
        for (_, kind, _), v in zip(self._entries, self._inputs):
            (scalars if kind == "scalar" else arrays).append(v)
        aux = {}
        for name, dt in zip(spec.aux, spec.aux_dtypes):
            aux[name] = np.empty(batch + (m, n), self.result_dtype if dt == "result" else dt)
            arrays.append(aux[name])
        acc = np.dtype(self.acc)
        reductions = [(spec.row_sum, m), (spec.sum_a, m), (spec.sum_b, n)]
        for name, length in reductions:
            if name:
                aux[name] = np.zeros(batch + (length,), acc)
                arrays.append(aux[name])
        # the scalar inputs follow alpha/beta in the kernel's parameters, in the same order as entries
        gemm.run(self._planned, arrays, scalars, len(batch), m, n, spec.fn, stream or self.stream)
        for name, _ in reductions:
            if name and self.result_dtype != self.acc:
                aux[name] = aux[name].astype(self.result_dtype)
        result = squeeze_vectors(out, *self._ndims)
        result = wrap_like(self._template, result)
        if not aux:
            return result
        return result, {k: wrap_like(self._template, v) for k, v in aux.items()}

    def reset_operands(self, a=None, b=None, c=None, *, alpha=None, beta=None, epilog_inputs=None, stream=None):
        """New operands of the same shapes and dtypes (as nvmath requires); the plan is kept."""
        if self._planned is None:
            raise RuntimeError("Matmul.reset_operands() before plan()")
        old = (self.batch, self.m, self.n, self.k, self.acc, tuple(self._entries))
        if alpha is not None:
            self._alpha = alpha
        if beta is not None:
            self._beta = beta
        a = self._template if a is None else a
        b = self._b if b is None else b
        c = self._c if c is None else c
        self._set_operands(a, b, c)
        if epilog_inputs is not None:
            self.plan(epilog=self._epilog, epilog_inputs=epilog_inputs)
        if (self.batch, self.m, self.n, self.k, self.acc) != old[:5]:
            raise ValueError(f"reset_operands: the new operands give a problem of batch {self.batch}, "
                             f"m, n, k = {self.m}, {self.n}, {self.k} and accumulation {self.acc}; the plan is "
                             f"for batch {old[0]}, {old[1]}, {old[2]}, {old[3]}, {old[4]}")
        if stream is not None:
            self.stream = stream

    def free(self):
        """Drop the operands (nvmath frees its workspace); the object cannot execute afterwards."""
        self._a = self._b = self._c = self._template = None
        self._inputs, self._planned = [], None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.free()


def matmul(a, b, c=None, *, alpha=None, beta=None, epilog=None, epilog_inputs=None, qualifiers=None,
           options=None, preferences=None, algorithm=None, stream=None):
    """nvmath.linalg.advanced.matmul on host arrays: epilog(alpha * a @ b + beta * c). `epilog` is a
    MatmulEpilog member or a Python function on tiles, f(acc, **epilog_inputs) -> tile, fused into the
    GEMM kernel's store. Returns the result, or (result, aux dict) for epilogs with auxiliary outputs."""
    if epilog is None and epilog_inputs:
        raise ValueError(f"epilog_inputs {sorted(epilog_inputs)} given without an epilog")
    with Matmul(a, b, c, alpha=alpha, beta=beta, qualifiers=qualifiers, options=options, stream=stream) as mm:
        mm.plan(preferences=preferences, epilog=epilog, epilog_inputs=epilog_inputs)
        return mm.execute()


__all__ = ["Matmul", "matmul"]
