"""cuTile-style flash attention: the forward kernel (online softmax in base 2, causal and ragged-K
masks, grouped-query heads, log-sum-exp output), the backward kernels (preprocess, dQ, dK/dV), and the
split-KV decode reduction."""
import math

import numpy as np
import pytest

import tilewise as ct
from tilewise import RoundingMode as RMd

INV_LOG_2 = 1.0 / math.log(2)
ConstInt = ct.Constant[int]
ConstBool = ct.Constant[bool]
ZERO = ct.PaddingMode.ZERO


@ct.kernel(occupancy=2)
def fmha_fwd(Q, K, V, Out, Lse, qk_scale: float, input_pos: int, D: ConstInt, H: ConstInt, TILE_M: ConstInt,
             TILE_N: ConstInt, GROUP: ConstInt, CAUSAL: ConstBool, EVEN_K: ConstBool):
    bx, by = ct.bid(0), ct.bid(1)
    batch, head = by // H, by % H
    kv_head = head // GROUP
    qk_scale = qk_scale * INV_LOG_2

    q_pos = bx * TILE_M + ct.arange(TILE_M, dtype=np.int32)
    q_pos += input_pos
    q_pos = q_pos[:, None]
    k_lane = ct.arange(TILE_N, dtype=np.int32)[None, :]

    m_i = ct.full((TILE_M, 1), -np.inf, dtype=np.float32)
    l_i = ct.full((TILE_M, 1), 0.0, dtype=np.float32)
    acc = ct.full((TILE_M, D), 0.0, dtype=np.float32)
    q = ct.load(Q, index=(batch, head, bx, 0), shape=(1, 1, TILE_M, D), allow_tma=True).reshape((TILE_M, D))

    k_len = K.shape[2]
    if CAUSAL:
        mask_from = min((input_pos + bx * TILE_M) // TILE_N, k_len // TILE_N)
        n_blocks = ct.cdiv(min(input_pos + (bx + 1) * TILE_M, k_len), TILE_N)
    else:
        mask_from = k_len // TILE_N
        n_blocks = ct.cdiv(k_len, TILE_N)

    for j in range(0, n_blocks):
        # K is (B, Hkv, S, D); order=(0, 1, 3, 2) loads its transpose tile (D, TILE_N) directly.
        k = ct.load(K, index=(batch, kv_head, 0, j), shape=(1, 1, D, TILE_N), order=(0, 1, 3, 2), latency=2,
                    padding_mode=ZERO).reshape((D, TILE_N))
        qk = ct.mma(q, k, ct.full((TILE_M, TILE_N), 0., dtype=np.float32))
        if (CAUSAL or not EVEN_K) and j >= mask_from:
            k_pos = j * TILE_N + k_lane
            keep = ct.full((TILE_M, TILE_N), True, dtype=np.bool_)
            if not EVEN_K:
                keep = keep & (k_pos < k_len)
            if CAUSAL:
                keep = keep & (q_pos >= k_pos)
            qk += ct.where(keep, 0.0, -np.inf)
        m_new = max(m_i, ct.max(qk, axis=-1, keepdims=True) * qk_scale)
        p = ct.exp2(qk * qk_scale - m_new, flush_to_zero=True)
        alpha = ct.exp2(m_i - m_new, flush_to_zero=True)
        l_i = l_i * alpha + ct.sum(p, axis=-1, keepdims=True)
        v = ct.load(V, index=(batch, kv_head, j, 0), shape=(1, 1, TILE_N, D), latency=4,
                    padding_mode=ZERO).reshape((TILE_N, D))
        acc = ct.mma(p.astype(Q.dtype), v, acc * alpha)
        m_i = m_new

    ct.store(Lse, index=(batch, head, bx), tile=(m_i + ct.log2(l_i)).reshape((1, 1, TILE_M)))
    acc = ct.truediv(acc, l_i, flush_to_zero=True, rounding_mode=RMd.APPROX)
    ct.store(Out, index=(batch, head, bx, 0), tile=acc.reshape((1, 1, TILE_M, D)).astype(Out.dtype))


@ct.kernel(occupancy=1)
def fmha_bwd_pre(Out, dO, Delta, H: ConstInt, TILE_M: ConstInt, D: ConstInt):
    batch, head = ct.bid(1) // H, ct.bid(1) % H
    o = ct.load(Out, index=(batch, head, ct.bid(0), 0), shape=(1, 1, TILE_M, D), latency=2).reshape((TILE_M, D))
    do = ct.load(dO, index=(batch, head, ct.bid(0), 0), shape=(1, 1, TILE_M, D)).reshape((TILE_M, D))
    ct.store(Delta, index=(batch, head, ct.bid(0)), tile=ct.sum(o * do, axis=1).reshape((1, 1, TILE_M)))


@ct.kernel(occupancy=2)
def fmha_bwd_dq(Q, K, V, dO, Delta, Lse, dQ, qk_scale: float, D: ConstInt, H: ConstInt, TILE_M: ConstInt,
                TILE_N: ConstInt, GROUP: ConstInt):
    bx = ct.bid(0)
    batch, head = ct.bid(1) // H, ct.bid(1) % H
    kv_head = head // GROUP
    q = ct.load(Q, index=(batch, head, bx, 0), shape=(1, 1, TILE_M, D)).reshape((TILE_M, D))
    lse = ct.load(Lse, index=(batch, head, bx), shape=(1, 1, TILE_M)).reshape((TILE_M, 1))
    delta = ct.load(Delta, index=(batch, head, bx), shape=(1, 1, TILE_M)).reshape((TILE_M, 1))
    do = ct.load(dO, index=(batch, head, bx, 0), shape=(1, 1, TILE_M, D)).reshape((TILE_M, D))
    dq = ct.full((TILE_M, D), 0., dtype=np.float32)
    for j in range(0, ct.cdiv(K.shape[2], TILE_N)):
        k = ct.load(K, index=(batch, kv_head, 0, j), shape=(1, 1, D, TILE_N), order=(0, 1, 3, 2),
                    padding_mode=ZERO).reshape((D, TILE_N))
        v = ct.load(V, index=(batch, kv_head, 0, j), shape=(1, 1, D, TILE_N), order=(0, 1, 3, 2),
                    padding_mode=ZERO).reshape((D, TILE_N))
        qk = ct.mma(q, k, ct.full((TILE_M, TILE_N), 0., dtype=np.float32))
        p = ct.exp2(qk * qk_scale * INV_LOG_2 - lse, flush_to_zero=True)
        dp = ct.mma(do, v, ct.full((TILE_M, TILE_N), 0., dtype=np.float32)) - delta
        ds = (p * dp).astype(k.dtype)
        dq = dq + ct.mma(ds, ct.permute(k, (1, 0)), ct.full((TILE_M, D), 0., dtype=np.float32))
    ct.store(dQ, index=(batch, head, bx, 0), tile=(dq * qk_scale).astype(q.dtype).reshape((1, 1, TILE_M, D)))


@ct.kernel(occupancy=2)
def fmha_bwd_dkdv(Q, K, V, dO, Delta, Lse, dK, dV, qk_scale: float, D: ConstInt, H: ConstInt,
                  TILE_M: ConstInt, TILE_N: ConstInt):
    bx = ct.bid(0)
    batch, head = ct.bid(1) // H, ct.bid(1) % H
    k = ct.load(K, index=(batch, head, 0, bx), shape=(1, 1, D, TILE_N), order=(0, 1, 3, 2)).reshape((D, TILE_N))
    v = ct.load(V, index=(batch, head, 0, bx), shape=(1, 1, D, TILE_N), order=(0, 1, 3, 2)).reshape((D, TILE_N))
    dk = ct.full((TILE_N, D), 0., dtype=np.float32)
    dv = ct.full((TILE_N, D), 0., dtype=np.float32)
    for i in range(0, ct.cdiv(Q.shape[2], TILE_M)):
        q = ct.load(Q, index=(batch, head, i, 0), shape=(1, 1, TILE_M, D), padding_mode=ZERO).reshape((TILE_M, D))
        lse = ct.load(Lse, index=(batch, head, i), shape=(1, 1, TILE_M), padding_mode=ZERO).reshape((TILE_M, 1))
        p = ct.exp2(ct.mma(q, k, ct.full((TILE_M, TILE_N), 0., dtype=np.float32)) * qk_scale * INV_LOG_2 - lse,
                    flush_to_zero=True)
        do = ct.load(dO, index=(batch, head, i, 0), shape=(1, 1, TILE_M, D), padding_mode=ZERO).reshape((TILE_M, D))
        dv = dv + ct.mma(ct.permute(p, (1, 0)).astype(do.dtype), do, ct.full((TILE_N, D), 0., dtype=np.float32))
        delta = ct.load(Delta, index=(batch, head, i), shape=(1, 1, TILE_M), padding_mode=ZERO).reshape((TILE_M, 1))
        ds = p * (ct.mma(do, v, ct.full((TILE_M, TILE_N), 0., dtype=np.float32)) - delta)
        dk = dk + ct.mma(ct.permute(ds, (1, 0)).astype(q.dtype), q, ct.full((TILE_N, D), 0., dtype=np.float32))
    ct.store(dK, index=(batch, head, bx, 0), tile=(dk * qk_scale).astype(k.dtype).reshape((1, 1, TILE_N, D)))
    ct.store(dV, index=(batch, head, bx, 0), tile=dv.astype(v.dtype).reshape((1, 1, TILE_N, D)))


@ct.kernel(occupancy=ct.ByTarget(sm_80=2, default=4))
def splitkv_reduce(parts, lse_parts, out, SPLITS_P2: ConstInt, TILE_D: ConstInt, USE_DOT: ConstBool):
    b, h, t = ct.bid(0), ct.bid(1), ct.bid(2)
    o = ct.load(parts, (b, h, 0, t), shape=(1, 1, SPLITS_P2, TILE_D), order=(0, 1, 2, 3), allow_tma=True,
                latency=2, padding_mode=ct.PaddingMode.ZERO).reshape((SPLITS_P2, TILE_D))
    lse = ct.gather(lse_parts, (b, h, ct.arange(SPLITS_P2, dtype=ct.int32)), padding_value=-math.inf)
    wts = ct.astype(ct.exp2(lse - ct.max(lse)), ct.float32)
    if USE_DOT:
        num = ct.mma(wts[None, :], ct.astype(o, ct.float32), ct.zeros((1, TILE_D), dtype=ct.float32))
        num = ct.extract(num, (0, 0), shape=(1, TILE_D))
    else:
        num = ct.sum(o * ct.reshape(wts, (SPLITS_P2, 1)), axis=0)
    acc = ct.astype(num / ct.sum(wts), out.dtype)
    ct.store(out, index=(b, h, t), tile=ct.reshape(acc, (1, 1, TILE_D)), order=(0, 1, 2), latency=2)


def _ref_attention(q, k, v, scale, causal, input_pos, group):
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    s = q @ k.transpose(0, 1, 3, 2) * scale
    if causal:
        qi = np.arange(q.shape[2])[:, None] + input_pos
        s = np.where(qi >= np.arange(k.shape[2])[None, :], s, -np.inf)
    m = s.max(-1, keepdims=True)
    e = np.exp(s - m)
    lse2 = (m[..., 0] + np.log(e.sum(-1))) / math.log(2)
    return e / e.sum(-1, keepdims=True) @ v, lse2, s


CASES = [  # B, H, group, Sq, Skv, D, TM, TN, causal, input_pos
    (1, 1, 1, 16, 16, 8, 16, 16, False, 0),
    (2, 4, 2, 20, 36, 16, 8, 16, False, 0),
    (1, 2, 1, 24, 24, 8, 8, 8, True, 0),
    (2, 2, 2, 12, 40, 8, 8, 16, True, 28),
    (1, 1, 1, 5, 7, 4, 4, 4, True, 2),
]


@pytest.mark.parametrize("B,H,group,Sq,Skv,D,TM,TN,causal,pos", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_fmha_forward(backend, rng, B, H, group, Sq, Skv, D, TM, TN, causal, pos, dtype):
    q = rng.standard_normal((B, H, Sq, D)).astype(dtype)
    k = rng.standard_normal((B, H // group, Skv, D)).astype(dtype)
    v = rng.standard_normal((B, H // group, Skv, D)).astype(dtype)
    out = np.empty_like(q)
    lse = np.empty((B, H, Sq), np.float32)
    scale = 1.0 / math.sqrt(D)
    args = (q, k, v, out, lse, scale, pos, D, H, TM, TN, group, causal, Skv % TN == 0)
    ct.launch(None, (ct.cdiv(Sq, TM), B * H, 1), fmha_fwd, args)
    ref, ref_lse, _ = _ref_attention(q, k, v, scale, causal, pos, group)
    tol = 2e-5 if dtype == np.float32 else 2e-2
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(lse, ref_lse, rtol=1e-4, atol=tol)


@pytest.mark.parametrize("B,H,S,D,TM,TN", [(1, 2, 16, 8, 8, 8), (2, 1, 20, 16, 8, 4)])
def test_fmha_backward(backend, rng, B, H, S, D, TM, TN):
    q, k, v, do = (rng.standard_normal((B, H, S, D)).astype(np.float32) for _ in range(4))
    scale = 1.0 / math.sqrt(D)
    out, lse = np.empty_like(q), np.empty((B, H, S), np.float32)
    ct.launch(None, (ct.cdiv(S, TM), B * H), fmha_fwd, (q, k, v, out, lse, scale, 0, D, H, TM, TN, 1, False,
                                                        S % TN == 0))
    delta = np.empty((B, H, S), np.float32)
    ct.launch(None, (ct.cdiv(S, TM), B * H), fmha_bwd_pre, (out, do, delta, H, TM, D))
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    ct.launch(None, (ct.cdiv(S, TM), B * H), fmha_bwd_dq, (q, k, v, do, delta, lse, dq, scale, D, H, TM, TN, 1))
    ct.launch(None, (ct.cdiv(S, TN), B * H), fmha_bwd_dkdv, (q, k, v, do, delta, lse, dk, dv, scale, D, H, TM, TN))

    o64, _, s = _ref_attention(q, k, v, scale, False, 0, 1)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    do64 = do.astype(np.float64)
    rdv = p.transpose(0, 1, 3, 2) @ do64
    dp = do64 @ v.astype(np.float64).transpose(0, 1, 3, 2)
    ds = p * (dp - (o64 * do64).sum(-1, keepdims=True))
    np.testing.assert_allclose(delta, (o64 * do64).sum(-1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dq, ds @ k.astype(np.float64) * scale, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dk, ds.transpose(0, 1, 3, 2) @ q.astype(np.float64) * scale, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dv, rdv, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("splits,use_dot", [(3, False), (3, True), (8, True), (1, False)])
def test_splitkv_reduce(backend, rng, splits, use_dot):
    B, H, D, TILE_D = 2, 3, 24, 16
    parts = rng.standard_normal((B, H, splits, D)).astype(np.float32)
    lse = (3 * rng.standard_normal((B, H, splits))).astype(np.float32)
    out = np.empty((B, H, D), np.float32)
    p2 = 1 << (splits - 1).bit_length()
    ct.launch(None, (B, H, ct.cdiv(D, TILE_D)), splitkv_reduce, (parts, lse, out, p2, TILE_D, use_dot))
    w = np.exp2(lse.astype(np.float64) - lse.max(-1, keepdims=True))
    ref = (parts * w[..., None]).sum(2) / w.sum(-1)[..., None]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_fmha_torch(backend):
    torch = pytest.importorskip("torch")
    B, H, S, D = 1, 2, 24, 16
    q, k, v = (torch.randn(B, H, S, D) for _ in range(3))
    out, lse = torch.empty_like(q), torch.empty(B, H, S)
    ct.launch(None, (ct.cdiv(S, 8), B * H, 1), fmha_fwd,
              (q, k, v, out, lse, 1.0 / math.sqrt(D), 0, D, H, 8, 16, 1, True, S % 16 == 0))
    ref = torch.nn.functional.scaled_dot_product_attention(q.double(), k.double(), v.double(), is_causal=True)
    torch.testing.assert_close(out, ref.float(), rtol=2e-5, atol=2e-5)
