"""nvmath's / cuBLASLt's matmul epilogs, each an ordinary Python function on tiles.

The GEMM kernel calls its epilog on the accumulator tile right before the store, so the compiler
inlines it there; a member of `MatmulEpilog` is such a function (its `__tile_function__`), which is
why a user's own function fuses exactly the same way. An epilog takes the accumulator (already
`alpha * a @ b + beta * c`, in the accumulation dtype) and its inputs as keyword tiles, and returns
the result tile, or the result followed by the auxiliary tiles that `EpilogSpec.aux` names."""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ._tw import tw

SQRT_2_OVER_PI = 0.7978845608028654
GELU_C = 0.044715


def identity(acc):
    return acc


def relu(acc):
    return tw.maximum(acc, 0)


def relu_aux(acc):
    return tw.maximum(acc, 0), acc > 0


def bias(acc, bias):
    return acc + bias


def relu_bias(acc, bias):
    return tw.maximum(acc + bias, 0)


def relu_aux_bias(acc, bias):
    x = acc + bias
    return tw.maximum(x, 0), x > 0


def gelu(acc):
    # cuBLASLt's GELU is the tanh approximation, not the erf form
    return 0.5 * acc * (1 + tw.tanh(SQRT_2_OVER_PI * (acc + GELU_C * acc * acc * acc)))


def gelu_aux(acc):
    return gelu(acc), acc


def gelu_bias(acc, bias):
    return gelu(acc + bias)


def gelu_aux_bias(acc, bias):
    x = acc + bias
    return gelu(x), x


def gelu_grad(x):
    t = tw.tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_C * x * x)


def drelu(acc, relu_aux):
    return tw.where(relu_aux != 0, acc, 0)


def dgelu(acc, gelu_aux):
    return acc * gelu_grad(gelu_aux)


@dataclass(frozen=True)
class EpilogSpec:
    """What the GEMM kernel needs to know about an epilog besides its tile function.

    inputs: the epilog_inputs it requires (keyword names of `fn`); optional: those it may take.
    row_inputs: inputs that hold one value per result row (nvmath's bias: shape (m,) or (m, 1)).
    aux: names of the tiles `fn` returns after the result, stored as full (m, n) outputs, with
    aux_dtypes ("result" or a NumPy dtype name). row_sum / sum_a / sum_b: the names of reduction
    outputs (the result summed over its columns; A summed over k; B summed over k)."""
    name: str
    fn: object
    inputs: tuple = ()
    optional: tuple = ()
    row_inputs: tuple = ()
    aux: tuple = ()
    aux_dtypes: tuple = ()
    row_sum: str | None = None
    sum_a: str | None = None
    sum_b: str | None = None


class MatmulEpilog(enum.IntEnum):
    """nvmath.linalg.advanced.MatmulEpilog, with cuBLASLt's values. Each member is usable as a tile
    function (`MatmulEpilog.GELU(t)` inside a kernel or another epilog)."""
    DEFAULT = 1
    RELU = 2
    RELU_AUX = 130
    BIAS = 4
    RELU_BIAS = 6
    RELU_AUX_BIAS = 134
    DRELU = 136
    DRELU_BGRAD = 152
    GELU = 32
    GELU_AUX = 160
    GELU_BIAS = 36
    GELU_AUX_BIAS = 164
    DGELU = 192
    DGELU_BGRAD = 208
    BGRADA = 256
    BGRADB = 512

    @property
    def spec(self) -> EpilogSpec:
        return _SPECS[self]

    @property
    def __tile_function__(self):
        return _SPECS[self].fn


_B = {"inputs": ("bias",), "row_inputs": ("bias",)}
_SPECS = {
    MatmulEpilog.DEFAULT: EpilogSpec("DEFAULT", identity),
    MatmulEpilog.RELU: EpilogSpec("RELU", relu),
    MatmulEpilog.RELU_AUX: EpilogSpec("RELU_AUX", relu_aux, aux=("relu_aux",), aux_dtypes=("uint8",)),
    MatmulEpilog.BIAS: EpilogSpec("BIAS", bias, **_B),
    MatmulEpilog.RELU_BIAS: EpilogSpec("RELU_BIAS", relu_bias, **_B),
    MatmulEpilog.RELU_AUX_BIAS: EpilogSpec("RELU_AUX_BIAS", relu_aux_bias, aux=("relu_aux",),
                                           aux_dtypes=("uint8",), **_B),
    MatmulEpilog.DRELU: EpilogSpec("DRELU", drelu, inputs=("relu_aux",)),
    MatmulEpilog.DRELU_BGRAD: EpilogSpec("DRELU_BGRAD", drelu, inputs=("relu_aux",), row_sum="drelu_bgrad"),
    MatmulEpilog.GELU: EpilogSpec("GELU", gelu),
    MatmulEpilog.GELU_AUX: EpilogSpec("GELU_AUX", gelu_aux, aux=("gelu_aux",), aux_dtypes=("result",)),
    MatmulEpilog.GELU_BIAS: EpilogSpec("GELU_BIAS", gelu_bias, **_B),
    MatmulEpilog.GELU_AUX_BIAS: EpilogSpec("GELU_AUX_BIAS", gelu_aux_bias, aux=("gelu_aux",),
                                           aux_dtypes=("result",), **_B),
    MatmulEpilog.DGELU: EpilogSpec("DGELU", dgelu, inputs=("gelu_aux",)),
    MatmulEpilog.DGELU_BGRAD: EpilogSpec("DGELU_BGRAD", dgelu, inputs=("gelu_aux",), row_sum="dgelu_bgrad"),
    MatmulEpilog.BGRADA: EpilogSpec("BGRADA", identity, sum_a="bgrada"),
    MatmulEpilog.BGRADB: EpilogSpec("BGRADB", identity, sum_b="bgradb"),
}
