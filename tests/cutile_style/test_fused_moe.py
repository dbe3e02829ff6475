"""cuTile-style fused mixture-of-experts GEMM: tokens sorted by expert and padded to TILE_M, rows of A
gathered through the sorted token ids, the expert's weight tile picked by a loaded scalar (`.item()`),
optional routing weights, and rows scattered back with a mask."""
import numpy as np
import pytest

import tilewise as ct


@ct.kernel
def fused_moe(a_flat, b, c_flat, topk_weights, sorted_ids, expert_ids, n_post_padded,
              N: ct.Constant[int], K: ct.Constant[int], EM: int, num_valid: int,
              TILE_M: ct.Constant[int], TILE_N: ct.Constant[int], TILE_K: ct.Constant[int],
              GROUP_M: ct.Constant[int], ROUTED: ct.Constant[int], top_k: ct.Constant[int],
              a_row_stride: ct.Constant[int], c_row_stride: ct.Constant[int]):
    bid = ct.bid(axis=0)
    n_m = ct.cdiv(EM, TILE_M)
    n_n = ct.cdiv(N, TILE_N)
    per_group = GROUP_M * n_n
    first_m = (bid // per_group) * GROUP_M
    rows_in_group = min(n_m - first_m, GROUP_M)
    bm = first_m + ((bid % per_group) % rows_in_group)
    bn = (bid % per_group) // rows_in_group

    padded = ct.gather(n_post_padded, 0, padding_value=0)
    if bm * TILE_M < padded:
        token_slots = bm * TILE_M + ct.arange(TILE_M, dtype=ct.int32)
        tokens = ct.gather(sorted_ids, token_slots, padding_value=0)
        valid = tokens < num_valid
        expert = ct.load(expert_ids, index=(bm,), shape=(1,)).item()
        a_rows = (tokens // top_k)[:, None] * a_row_stride
        a_mask = ct.broadcast_to(valid[:, None], (TILE_M, TILE_K))
        acc = ct.full((TILE_M, TILE_N), 0.0, dtype=ct.float32)
        for k in range(0, ct.cdiv(K, TILE_K)):
            cols = k * TILE_K + ct.arange(TILE_K, dtype=ct.int32)
            a = ct.gather(a_flat, a_rows + cols[None, :], mask=a_mask & (cols[None, :] < K), padding_value=0)
            # b is (E, N, K); order=(0, 2, 1) views it as (E, K, N).
            w = ct.load(b, index=(expert, k, bn), shape=(1, TILE_K, TILE_N), order=(0, 2, 1),
                        padding_mode=ct.PaddingMode.ZERO)
            acc = ct.mma(a, ct.reshape(w, (TILE_K, TILE_N)), acc)
        if ROUTED:
            acc = acc * ct.expand_dims(ct.gather(topk_weights, tokens, padding_value=0), axis=1)
        out_cols = bn * TILE_N + ct.arange(TILE_N, dtype=ct.int32)
        offsets = c_row_stride * tokens[:, None] + out_cols[None, :]
        mask = valid[:, None] & (out_cols[None, :] < N)
        ct.scatter(c_flat, offsets, ct.astype(acc, c_flat.dtype), mask=mask)


def _align(topk_ids, num_experts, tile_m):
    """Host-side routing: token slots sorted by expert, each expert's run padded to tile_m."""
    flat = topk_ids.reshape(-1)
    sentinel = flat.size
    sorted_ids, expert_ids = [], []
    for e in range(num_experts):
        slots = np.nonzero(flat == e)[0].tolist()
        if not slots:
            continue
        pad = (-len(slots)) % tile_m
        sorted_ids += slots + [sentinel] * pad
        expert_ids += [e] * ((len(slots) + pad) // tile_m)
    used = len(sorted_ids)
    # Buffers are sized for the worst case, as on a GPU; blocks past `used` must do nothing.
    sorted_ids += [sentinel] * (2 * tile_m)
    expert_ids += [num_experts + 5] * 2
    return np.array(sorted_ids, np.int32), np.array(expert_ids, np.int32), np.array([used], np.int32)


@pytest.mark.parametrize("T,E,N,K,top_k,routed", [(10, 4, 24, 40, 2, True), (1, 2, 8, 8, 1, False),
                                                  (17, 3, 33, 20, 2, True)])
def test_fused_moe(backend, rng, T, E, N, K, top_k, routed):
    TILE_M, TILE_N, TILE_K = 8, 16, 16
    a = rng.standard_normal((T, K)).astype(np.float32)
    b = rng.standard_normal((E, N, K)).astype(np.float32)
    topk_ids = np.stack([rng.permutation(E)[:top_k] for _ in range(T)]).astype(np.int32)
    topk_w = rng.random((T, top_k)).astype(np.float32)
    sorted_ids, expert_ids, n_pad = _align(topk_ids, E, TILE_M)
    c = np.zeros((T, top_k, N), np.float32)
    em = sorted_ids.shape[0]
    grid = (ct.cdiv(em, TILE_M) * ct.cdiv(N, TILE_N),)
    args = (a.reshape(-1), b, c.reshape(-1), topk_w.reshape(-1), sorted_ids, expert_ids, n_pad,
            N, K, em, topk_ids.size, TILE_M, TILE_N, TILE_K, 4, int(routed), top_k, K, N)
    ct.launch(None, grid, fused_moe, args)
    ref = np.einsum("tk,tjnk->tjn", a.astype(np.float64), b[topk_ids].astype(np.float64))
    if routed:
        ref = ref * topk_w[:, :, None]
    np.testing.assert_allclose(c, ref, rtol=1e-4, atol=1e-4)
