"""Per-element semantics of `unary` and `binary` on registers, following reference/semantics.py.

Integer ops are total, as in the reference: division by zero gives 0, INT_MIN // -1 wraps, and
out-of-range shifts give 0 (or the sign fill), so nothing here can trap or be undefined in LLVM.
Floats follow NumPy: minimum/maximum propagate NaN, floor division and modulo are npy_divmod."""
from __future__ import annotations

from llvmlite import ir

from . import mathlib
from .elements import I1, compute_type, from_compute, intrinsic, to_compute

# These vectorise as they are; the transcendental functions come from mathlib (LLVM would call libm).
_INTRINSIC = {"sqrt": "llvm.sqrt", "abs": "llvm.fabs", "floor": "llvm.floor", "ceil": "llvm.ceil",
              "trunc": "llvm.trunc", "round": "llvm.roundeven"}


def _call1(b, name, v):
    return b.call(intrinsic(b.module, name, v.type, [v.type]), [v])


def _fconst(t, x):
    return ir.Constant(t, x)


def helper(module, name, ret, args, body):
    """An internal, always-inlined function built once per module (loops inside one element op)."""
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ret, args), name)
        fn.linkage = "internal"
        fn.attributes.add("alwaysinline")
        body(ir.IRBuilder(fn.append_basic_block("entry")), *fn.args)
    return fn


# ---- unary ----------------------------------------------------------------------------------------

def unary(b, fn, v, dt):
    if fn in ("isnan", "isinf", "isfinite"):
        if not dt.is_float:
            return I1(1 if fn == "isfinite" else 0)
        f = to_compute(b, v, dt)
        if fn == "isnan":
            return b.fcmp_unordered("uno", f, f)
        mag = _call1(b, "llvm.fabs", f)
        return b.fcmp_ordered("==" if fn == "isinf" else "<", mag, _fconst(f.type, float("inf")))
    if dt.is_float:
        return from_compute(b, _float_unary(b, fn, to_compute(b, v, dt)), dt)
    if fn == "invert":
        return b.not_(v)
    if fn == "neg":
        return b.neg(v)
    if fn == "abs" and dt.kind == "i":
        return b.select(b.icmp_signed("<", v, ir.Constant(v.type, 0)), b.neg(v), v)
    if fn in ("abs", "floor", "ceil", "trunc", "round"):
        return v  # integers are already integral (and unsigned abs is the identity)
    raise AssertionError(f"unary {fn} on {dt}")


def _float_unary(b, fn, f):
    t = f.type
    if fn in _INTRINSIC:
        return _call1(b, _INTRINSIC[fn], f)
    if fn in mathlib.FUNCTIONS:
        return mathlib.call(b, fn, f)
    if fn == "neg":
        return b.fneg(f)
    if fn == "rsqrt":
        return b.fdiv(_fconst(t, 1.0), _call1(b, "llvm.sqrt", f))
    raise AssertionError(f"unary {fn}")


# ---- binary ---------------------------------------------------------------------------------------

_CMP = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def binary(b, fn, x, y, dt):
    if dt.is_float:
        return _float_binary(b, fn, x, y, dt)
    signed = dt.kind == "i"
    if fn in _CMP:
        return (b.icmp_signed if signed else b.icmp_unsigned)(_CMP[fn], x, y)
    if fn in ("add", "sub", "mul", "and", "or", "xor"):
        return {"add": b.add, "sub": b.sub, "mul": b.mul, "and": b.and_, "or": b.or_, "xor": b.xor}[fn](x, y)
    if fn in ("minimum", "maximum"):
        if dt.is_bool:
            return b.and_(x, y) if fn == "minimum" else b.or_(x, y)
        cmp = b.icmp_signed if signed else b.icmp_unsigned
        return b.select(cmp("<" if fn == "minimum" else ">", x, y), x, y)
    if fn in ("floordiv", "mod"):
        return _int_divmod(b, fn, x, y, signed)
    if fn in ("shl", "shr"):
        return _shift(b, fn, x, y, dt)
    if fn == "pow":
        f = helper(b.module, f"tw.ipow.{'s' if signed else 'u'}{dt.bits}", x.type, [x.type, x.type],
                   lambda hb, a, e: _build_ipow(hb, a, e, signed))
        return b.call(f, [x, y])
    raise AssertionError(f"binary {fn} on {dt}")


def _int_divmod(b, fn, x, y, signed):
    t = x.type
    zero = b.icmp_unsigned("==", y, ir.Constant(t, 0))
    if not signed:
        ys = b.select(zero, ir.Constant(t, 1), y)
        r = (b.udiv if fn == "floordiv" else b.urem)(x, ys)
        return b.select(zero, ir.Constant(t, 0), r)
    minus1 = b.icmp_signed("==", y, ir.Constant(t, -1))
    special = b.or_(zero, minus1)  # y == -1 would trap on INT_MIN; its answer is simple anyway
    ys = b.select(special, ir.Constant(t, 1), y)
    q, r = b.sdiv(x, ys), b.srem(x, ys)
    adjust = b.and_(b.icmp_signed("!=", r, ir.Constant(t, 0)),
                    b.icmp_signed("<", b.xor(r, ys), ir.Constant(t, 0)))
    if fn == "floordiv":
        out = b.sub(q, b.zext(adjust, t))
        return b.select(zero, ir.Constant(t, 0), b.select(minus1, b.neg(x), out))
    out = b.add(r, b.select(adjust, ys, ir.Constant(t, 0)))
    return b.select(special, ir.Constant(t, 0), out)


def _shift(b, fn, x, y, dt):
    t = x.type
    bits = ir.Constant(t, dt.bits)
    if dt.kind == "i":
        big = b.or_(b.icmp_signed("<", y, ir.Constant(t, 0)), b.icmp_signed(">=", y, bits))
    else:
        big = b.icmp_unsigned(">=", y, bits)
    ys = b.select(big, ir.Constant(t, 0), y)
    if fn == "shl":
        return b.select(big, ir.Constant(t, 0), b.shl(x, ys))
    if dt.kind == "i":
        return b.select(big, b.ashr(x, ir.Constant(t, dt.bits - 1)), b.ashr(x, ys))
    return b.select(big, ir.Constant(t, 0), b.lshr(x, ys))


def _build_ipow(b, x, e, signed):
    """Square-and-multiply with wrapping (equal to NumPy's power mod 2**bits); negative exponents give
    1/x truncated: 1 for x == 1, +-1 for x == -1, else 0."""
    t = x.type
    zero, one = ir.Constant(t, 0), ir.Constant(t, 1)
    entry = b.block
    loop = b.append_basic_block("loop")
    done = b.append_basic_block("done")
    e0 = b.select(b.icmp_signed("<", e, zero), zero, e) if signed else e
    b.cbranch(b.icmp_unsigned("==", e0, zero), done, loop)
    b.position_at_end(loop)
    acc, base, exp = b.phi(t), b.phi(t), b.phi(t)
    acc.add_incoming(one, entry)
    base.add_incoming(x, entry)
    exp.add_incoming(e0, entry)
    odd = b.icmp_unsigned("!=", b.and_(exp, one), zero)
    acc2 = b.select(odd, b.mul(acc, base), acc)
    base2 = b.mul(base, base)
    exp2 = b.lshr(exp, one)
    acc.add_incoming(acc2, loop)
    base.add_incoming(base2, loop)
    exp.add_incoming(exp2, loop)
    b.cbranch(b.icmp_unsigned("==", exp2, zero), done, loop)
    b.position_at_end(done)
    res = b.phi(t)
    res.add_incoming(one, entry)
    res.add_incoming(acc2, loop)
    if signed:
        odd_e = b.icmp_unsigned("!=", b.and_(e, one), zero)
        inv = b.select(b.icmp_signed("==", x, one), one,
                       b.select(b.icmp_signed("==", x, ir.Constant(t, -1)),
                                b.select(odd_e, ir.Constant(t, -1), one), zero))
        b.ret(b.select(b.icmp_signed("<", e, zero), inv, res))
    else:
        b.ret(res)


def _float_binary(b, fn, x, y, dt):
    cx, cy = to_compute(b, x, dt), to_compute(b, y, dt)
    if fn in _CMP:
        cmp = b.fcmp_unordered if fn == "ne" else b.fcmp_ordered  # NaN != NaN is true, every other test false
        return cmp(_CMP[fn], cx, cy)
    if fn in ("minimum", "maximum"):  # NumPy: (x < y || isnan(x)) ? x : y
        better = b.fcmp_ordered("<" if fn == "minimum" else ">", cx, cy)
        return b.select(b.or_(better, b.fcmp_unordered("uno", cx, cx)), x, y)
    if fn in ("add", "sub", "mul", "truediv"):
        r = {"add": b.fadd, "sub": b.fsub, "mul": b.fmul, "truediv": b.fdiv}[fn](cx, cy)
    elif fn in ("pow", "atan2"):
        r = mathlib.call(b, fn, cx, cy)
    elif fn in ("floordiv", "mod"):
        t = compute_type(dt)
        name = f"tw.f{fn}.{t.intrinsic_name}"
        r = b.call(helper(b.module, name, t, [t, t], lambda hb, p, q: _build_fdivmod(hb, p, q, fn)), [cx, cy])
    else:
        raise AssertionError(f"binary {fn} on {dt}")
    return from_compute(b, r, dt)


def _build_fdivmod(b, a, d, fn):
    """NumPy's npy_divmod (floor_divide / remainder), including its b == 0 and signed-zero cases."""
    t = a.type
    z, one, half = _fconst(t, 0.0), _fconst(t, 1.0), _fconst(t, 0.5)
    mod = b.frem(a, d)
    by_zero = b.fcmp_ordered("==", d, z)
    div = b.fdiv(b.fsub(a, mod), d)
    mod_nz = b.fcmp_unordered("!=", mod, z)
    flip = b.and_(mod_nz, b.xor(b.fcmp_ordered("<", d, z), b.fcmp_ordered("<", mod, z)))
    mod2 = b.select(flip, b.fadd(mod, d), mod)
    div2 = b.select(flip, b.fsub(div, one), div)
    copysign = intrinsic(b.module, "llvm.copysign", t, [t, t])
    mod3 = b.select(mod_nz, mod2, b.call(copysign, [z, d]))
    if fn == "mod":
        b.ret(b.select(by_zero, mod, mod3))
        return
    fl = _call1(b, "llvm.floor", div2)
    fl2 = b.select(b.fcmp_ordered(">", b.fsub(div2, fl), half), b.fadd(fl, one), fl)
    quotient = b.fdiv(a, d)
    res = b.select(b.fcmp_unordered("!=", div2, z), fl2, b.call(copysign, [z, quotient]))
    b.ret(b.select(by_zero, quotient, res))

