"""Flash attention, forward: O = softmax(Q K^T * scale) V without materialising the score matrix.
Each block owns TM query rows of one (batch, head) and streams K/V in tiles of TN keys, keeping an
online softmax: the running row max m, the running denominator l, and the unnormalised output acc,
rescaled by exp(m_old - m_new) whenever the max grows. CAUSAL is a compile-time flag."""
import sys

import numpy as np

import tilewise as tw


@tw.kernel
def flash_attention(q, k, v, o, scale: float, D: tw.Constant[int], TM: tw.Constant[int],
                    TN: tw.Constant[int], CAUSAL: tw.Constant[bool]):
    qi, bh = tw.bid(0), tw.bid(1)
    n_keys = k.shape[1]
    qt = tw.load(q, index=(bh, qi, 0), shape=(1, TM, D), padding_mode=tw.PaddingMode.ZERO).reshape((TM, D))
    rows = qi * TM + tw.arange(TM)[:, None]

    m = tw.full((TM, 1), -np.inf, dtype=tw.float32)
    l_sum = tw.zeros((TM, 1), dtype=tw.float32)
    acc = tw.zeros((TM, D), dtype=tw.float32)
    tiles = tw.num_tiles(k, axis=1, shape=(1, TN, D))
    if CAUSAL:
        tiles = min(tiles, tw.cdiv((qi + 1) * TM, TN))  # later key tiles are fully masked
    for j in range(tiles):
        kt = tw.load(k, index=(bh, j, 0), shape=(1, TN, D), padding_mode=tw.PaddingMode.ZERO).reshape((TN, D))
        vt = tw.load(v, index=(bh, j, 0), shape=(1, TN, D), padding_mode=tw.PaddingMode.ZERO).reshape((TN, D))
        s = tw.mma(qt, tw.transpose(kt), tw.zeros((TM, TN), dtype=tw.float32)) * scale
        cols = j * TN + tw.arange(TN)[None, :]
        keep = cols < n_keys
        if CAUSAL:
            keep = keep & (cols <= rows)
        s = tw.where(keep, s, -np.inf)
        m_new = tw.maximum(m, tw.max(s, axis=1, keepdims=True))
        # a row that has seen only masked keys keeps m = -inf; subtract 0 instead so exp gives 0, not NaN
        safe = tw.where(m_new == -np.inf, 0.0, m_new)
        p = tw.exp(s - safe)
        alpha = tw.exp(m - safe)
        l_sum = l_sum * alpha + tw.sum(p, axis=1, keepdims=True)
        acc = tw.mma(p.astype(vt.dtype), vt, acc * alpha)
        m = m_new
    out = acc / tw.where(l_sum == 0.0, 1.0, l_sum)
    tw.store(o, index=(bh, qi, 0), tile=out.reshape((1, TM, D)).astype(o.dtype))


def reference(q, k, v, scale, causal):
    s = np.einsum("bqd,bkd->bqk", q.astype(np.float64), k.astype(np.float64)) * scale
    if causal:
        s = np.where(np.tril(np.ones(s.shape[1:], bool)), s, -np.inf)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    return np.einsum("bqk,bkd->bqd", p / p.sum(axis=-1, keepdims=True), v.astype(np.float64))


def run(q, k, v, causal, tm, tn):
    bh, n, d = q.shape
    o = np.empty(q.shape, np.float32)
    tw.launch(None, (tw.cdiv(n, tm), bh, 1), flash_attention,
              (q, k, v, o, float(1.0 / np.sqrt(d)), d, tm, tn, causal))
    return float(np.max(np.abs(o - reference(q, k, v, 1.0 / np.sqrt(d), causal))))


def main(batch_heads=3, seq=100, dim=48, tm=32, tn=16, seed=0):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((batch_heads, seq, dim)).astype(np.float32) for _ in range(3))
    errors = {causal: run(q, k, v, causal, tm, tn) for causal in (False, True)}
    ok = all(e < 1e-5 for e in errors.values())
    print(f"flash_attention {batch_heads}x{seq}x{dim}: max abs error {errors[False]:.1e} (full), "
          f"{errors[True]:.1e} (causal) {'ok' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
