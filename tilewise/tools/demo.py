"""`tilewise demo`: five kernels and a NumPy program (tilewise.numpy) run on this machine's default host
backend and checked against NumPy.

It is what a fresh install runs first, so it must be quick (seconds on the default cpu backend) and
honest: every result is compared with a float64 NumPy reference, and any mismatch fails the run.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

import tilewise as tw
from tilewise import backends

ZERO = tw.PaddingMode.ZERO


# ---- the kernels ----------------------------------------------------------------------------------

@tw.kernel
def vector_add(a, b, c, TILE: tw.Constant[int]):
    x = tw.load(a, index=(tw.bid(0),), shape=(TILE,))
    y = tw.load(b, index=(tw.bid(0),), shape=(TILE,))
    tw.store(c, index=(tw.bid(0),), tile=x + y)


@tw.kernel
def softmax(x, y, TM: tw.Constant[int], TN: tw.Constant[int]):
    rows = tw.load(x, index=(tw.bid(0), 0), shape=(TM, TN), padding_mode=tw.PaddingMode.NEG_INF)
    e = tw.exp(rows - tw.max(rows, axis=1, keepdims=True))
    tw.store(y, index=(tw.bid(0), 0), tile=e / tw.sum(e, axis=1, keepdims=True))


@tw.kernel
def layer_norm(x, w, b, y, eps: float, TM: tw.Constant[int], TN: tw.Constant[int]):
    n = x.shape[1]
    rows = tw.load(x, index=(tw.bid(0), 0), shape=(TM, TN), padding_mode=ZERO)
    mean = tw.sum(rows, axis=1, keepdims=True) / n
    # Padding columns would add (0 - mean)^2 to the variance: zero them after centring.
    centred = tw.where(tw.arange(TN)[None, :] < n, rows - mean, 0.0)
    var = tw.sum(centred * centred, axis=1, keepdims=True) / n
    scale = tw.load(w, index=(0,), shape=(TN,), padding_mode=ZERO)[None, :]
    shift = tw.load(b, index=(0,), shape=(TN,), padding_mode=ZERO)[None, :]
    tw.store(y, index=(tw.bid(0), 0), tile=centred * tw.rsqrt(var + eps) * scale + shift)


@tw.kernel
def matmul(A, B, C, TM: tw.Constant[int], TN: tw.Constant[int], TK: tw.Constant[int]):
    bm, bn = tw.bid(0), tw.bid(1)
    acc = tw.zeros((TM, TN), dtype=tw.float32)
    for k in range(tw.num_tiles(A, axis=1, shape=(TM, TK))):
        a = tw.load(A, index=(bm, k), shape=(TM, TK), padding_mode=ZERO)
        b = tw.load(B, index=(k, bn), shape=(TK, TN), padding_mode=ZERO)
        acc = tw.mma(a, b, acc)  # fp16 inputs, fp32 accumulator
    tw.store(C, index=(bm, bn), tile=acc)


@tw.kernel
def flash_attention(Q, K, V, Out, qk_scale: float, TM: tw.Constant[int], TN: tw.Constant[int],
                    D: tw.Constant[int], CAUSAL: tw.Constant[bool]):
    """One block: TM queries of one head; K/V stream past in tiles of TN with an online softmax."""
    bm, head = tw.bid(0), tw.bid(1)
    seq = K.shape[1]
    q = tw.load(Q, index=(head, bm, 0), shape=(1, TM, D), padding_mode=ZERO).reshape((TM, D))
    q_pos = bm * TM + tw.arange(TM)[:, None]
    m = tw.full((TM, 1), -math.inf, dtype=tw.float32)
    l_sum = tw.zeros((TM, 1), dtype=tw.float32)
    acc = tw.zeros((TM, D), dtype=tw.float32)
    n_kv = tw.num_tiles(K, axis=1, shape=(1, TN, D))
    if CAUSAL:
        n_kv = tw.minimum(n_kv, tw.cdiv((bm + 1) * TM, TN))
    for j in range(n_kv):
        k = tw.load(K, index=(head, j, 0), shape=(1, TN, D), padding_mode=ZERO).reshape((TN, D))
        v = tw.load(V, index=(head, j, 0), shape=(1, TN, D), padding_mode=ZERO).reshape((TN, D))
        s = tw.mma(q, tw.transpose(k), tw.zeros((TM, TN), dtype=tw.float32)) * qk_scale
        k_pos = j * TN + tw.arange(TN)[None, :]
        keep = k_pos < seq
        if CAUSAL:
            keep = keep & (k_pos <= q_pos)
        s = tw.where(keep, s, -math.inf)
        m_new = tw.maximum(m, tw.max(s, axis=1, keepdims=True))
        p = tw.exp(s - m_new)
        alpha = tw.exp(m - m_new)
        l_sum = l_sum * alpha + tw.sum(p, axis=1, keepdims=True)
        acc = tw.mma(p.astype(tw.float16), v, acc * alpha)
        m = m_new
    out = (acc / l_sum).astype(Out.dtype)
    tw.store(Out, index=(head, bm, 0), tile=out.reshape((1, TM, D)))


# ---- running and checking -------------------------------------------------------------------------

def _softmax64(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def case_vector_add(rng):
    n = 100_003  # not a multiple of the tile: the last block is partial
    a, b = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    c = np.empty_like(a)
    tw.launch(None, (tw.cdiv(n, 1024),), vector_add, (a, b, c, 1024))
    return f"{n}", c, a.astype(np.float64) + b, 1e-6, 1e-6


def case_softmax(rng):
    m, n = 1000, 700
    x = (rng.standard_normal((m, n)) * 3).astype(np.float32)
    y = np.empty_like(x)
    tw.launch(None, (tw.cdiv(m, 4),), softmax, (x, y, 4, 1024))
    return f"{m}x{n}", y, _softmax64(x.astype(np.float64)), 1e-5, 1e-6


def case_layer_norm(rng):
    m, n, eps = 512, 300, 1e-5
    x = (rng.standard_normal((m, n)) * 2 + 0.5).astype(np.float32)
    w, b = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    y = np.empty_like(x)
    tw.launch(None, (tw.cdiv(m, 8),), layer_norm, (x, w, b, y, eps, 8, 512))
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=1, keepdims=True)
    ref = (x64 - mu) / np.sqrt(x64.var(axis=1, keepdims=True) + eps) * w + b
    return f"{m}x{n}", y, ref, 1e-4, 1e-4


def case_matmul(rng):
    m, n, k = 300, 200, 250
    a, b = rng.standard_normal((m, k)).astype(np.float16), rng.standard_normal((k, n)).astype(np.float16)
    c = np.empty((m, n), np.float32)
    tm, tn, tk = 64, 64, 32
    tw.launch(None, (tw.cdiv(m, tm), tw.cdiv(n, tn)), matmul, (a, b, c, tm, tn, tk))
    return f"{m}x{k} @ {k}x{n}", c, a.astype(np.float64) @ b.astype(np.float64), 1e-3, 1e-3


def case_numpy(rng):
    """A NumPy program with one changed import: its chain and its reduction each become one kernel."""
    import tilewise.numpy as tnp
    n = 200_003
    a, b, c = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    x, y, z = tnp.asarray(a), tnp.asarray(b), tnp.asarray(c)
    r = x * y + tnp.exp(-z * z) - 0.5 * tnp.sqrt(tnp.abs(x))
    r = r - r.mean()
    a64, b64, c64 = (v.astype(np.float64) for v in (a, b, c))
    ref = a64 * b64 + np.exp(-c64 * c64) - 0.5 * np.sqrt(np.abs(a64))
    return f"{n}", r, ref - ref.mean(), 1e-5, 1e-5


def attention64(q, k, v, causal):
    s = q.astype(np.float64) @ np.swapaxes(k.astype(np.float64), -1, -2) / math.sqrt(q.shape[-1])
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    return _softmax64(s) @ v.astype(np.float64)


def _attention_case(rng, causal):
    heads, seq, d = 4, 200, 64
    q, k, v = (rng.standard_normal((heads, seq, d)).astype(np.float16) for _ in range(3))
    o = np.empty_like(q)
    tm, tn = 64, 32
    tw.launch(None, (tw.cdiv(seq, tm), heads), flash_attention,
              (q, k, v, o, 1 / math.sqrt(d), tm, tn, d, causal))
    # fp16 output and the fp16 probabilities fed to P @ V bound the error at a few fp16 ulps.
    return f"{heads}x{seq}x{d}", o, attention64(q, k, v, causal), 5e-3, 5e-3


CASES = [
    ("vector add", case_vector_add),
    ("softmax", case_softmax),
    ("layer norm", case_layer_norm),
    ("matmul fp16->fp32", case_matmul),
    ("flash attention", lambda rng: _attention_case(rng, False)),
    ("flash attention causal", lambda rng: _attention_case(rng, True)),
    ("tilewise.numpy expression", case_numpy),
]


def run_case(name, fn, rng):
    """(name, shape, max abs error, passed, seconds); a kernel that raises counts as a failure."""
    t0 = time.perf_counter()
    try:
        shape, got, ref, rtol, atol = fn(rng)
        got = np.asarray(got, np.float64)  # a tilewise.numpy result is computed here
    except Exception as e:  # the demo reports every kernel, then fails as a whole
        first_line = (str(e).splitlines() or [""])[0]
        return name, "-", f"{type(e).__name__}: {first_line}", False, time.perf_counter() - t0
    seconds = time.perf_counter() - t0
    err = float(np.max(np.abs(got - ref)))
    passed = bool(np.all(np.isfinite(got)) and np.all(np.abs(got - ref) <= atol + rtol * np.abs(ref)))
    return name, shape, f"{err:.2e}", passed, seconds


def main(argv=None) -> int:
    rng = np.random.default_rng(0)
    backend = backends.host_backend_name()
    print(f"tilewise {tw.__version__} demo on the '{backend}' backend (each time includes JIT compilation)\n")
    rows = [run_case(name, fn, rng) for name, fn in CASES]
    headers = ("kernel", "shape", "max error", "check", "time")
    table = [(n, s, e, "pass" if ok else "FAIL", f"{t * 1000:.0f} ms") for n, s, e, ok, t in rows]
    widths = [max(len(str(r[i])) for r in [headers, *table]) for i in range(len(headers))]
    for r in [headers, tuple("-" * w for w in widths), *table]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    failed = [r[0] for r in rows if not r[3]]
    print()
    if failed:
        print(f"FAILED: {', '.join(failed)} (see the table above)")
        return 1
    print(f"all {len(rows)} kernels match NumPy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
