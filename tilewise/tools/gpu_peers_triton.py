"""Triton peers for the GPU validation kit (`python -m tilewise.tools.gpu_check`): the kit's kernels written
in Triton, so its table can set tilewise beside hand-written Triton on the same card.

Each `run_<name>` takes PyTorch CUDA tensors (contiguous in the last axis), launches on PyTorch's
current stream and returns the output tensor (`out=` reuses one, so timing loops do not allocate).
Outputs are float32, like the tilewise kernels the kit times. Block sizes are picked for an H100.

Triton is never a dependency of tilewise: importing this module without Triton (or PyTorch) raises
ImportError, and the kit imports it lazily and leaves the Triton column empty then.

UNTESTED until a GPU run: these kernels were written on a machine with neither a GPU nor Triton and
only syntax-checked there. The kit checks every Triton result against the same NumPy reference as
tilewise's and reports a wrong one as an error, so the first GPU run of the kit is their test.
fp32 matmul asks for TF32 tensor cores with `allow_tf32=True`, which Triton 2.x and 3.x both accept
(3.x calls it deprecated in favour of `input_precision="tf32"`, which 2.x lacks)."""
try:
    import torch
    import triton
    import triton.language as tl
except ImportError as e:  # the kit catches this and prints "—" in the Triton column
    raise ImportError(f"tilewise.tools.gpu_peers_triton needs Triton and PyTorch ({e}); they are optional "
                      "peers for the GPU validation kit, never tilewise dependencies") from e


def _warps(block):
    """Warps for a one-row-per-program kernel: enough threads that each holds at most ~16 elements."""
    return max(1, min(16, block // 512))


@triton.jit
def _add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < n
    x = tl.load(x_ptr + offs, mask=inside)
    y = tl.load(y_ptr + offs, mask=inside)
    tl.store(out_ptr + offs, x + y, mask=inside)


def run_vector_add(x, y, out=None):
    out = torch.empty_like(x) if out is None else out
    n, block = x.numel(), 2048
    _add_kernel[(triton.cdiv(n, block),)](x, y, out, n, BLOCK=block, num_warps=8)
    return out


@triton.jit
def _softmax_kernel(x_ptr, out_ptr, n_cols, x_row_stride, out_row_stride, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    inside = cols < n_cols
    # -inf in the padding lanes: they never win the max and exp() turns them into 0 in the sum
    x = tl.load(x_ptr + row * x_row_stride + cols, mask=inside, other=-float("inf")).to(tl.float32)
    e = tl.exp(x - tl.max(x, axis=0))
    y = e / tl.sum(e, axis=0)
    tl.store(out_ptr + row * out_row_stride + cols, y.to(out_ptr.dtype.element_ty), mask=inside)


def run_softmax(x, out=None):
    """Softmax over the last axis of a 2-D tensor, one program per row (the whole row in registers)."""
    m, n = x.shape
    out = torch.empty(x.shape, dtype=torch.float32, device=x.device) if out is None else out
    block = triton.next_power_of_2(n)
    _softmax_kernel[(m,)](x, out, n, x.stride(0), out.stride(0), BLOCK=block, num_warps=_warps(block))
    return out


@triton.jit
def _layer_norm_kernel(x_ptr, w_ptr, b_ptr, out_ptr, n_cols, x_row_stride, out_row_stride, eps,
                       BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    inside = cols < n_cols
    x = tl.load(x_ptr + row * x_row_stride + cols, mask=inside, other=0.0).to(tl.float32)
    mean = tl.sum(x, axis=0) / n_cols
    centred = tl.where(inside, x - mean, 0.0)  # padding lanes would add mean^2 to the variance
    var = tl.sum(centred * centred, axis=0) / n_cols
    w = tl.load(w_ptr + cols, mask=inside, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + cols, mask=inside, other=0.0).to(tl.float32)
    y = centred / tl.sqrt(var + eps) * w + b
    tl.store(out_ptr + row * out_row_stride + cols, y.to(out_ptr.dtype.element_ty), mask=inside)


def run_layer_norm(x, weight, bias, eps=1e-5, out=None):
    """Layer norm over the last axis of a 2-D tensor (biased variance, like torch and the example)."""
    m, n = x.shape
    out = torch.empty(x.shape, dtype=torch.float32, device=x.device) if out is None else out
    block = triton.next_power_of_2(n)
    _layer_norm_kernel[(m,)](x, weight, bias, out, n, x.stride(0), out.stride(0), float(eps),
                             BLOCK=block, num_warps=_warps(block))
    return out


@triton.jit
def _matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, s_am, s_ak, s_bk, s_bn, s_cm, s_cn,
                   BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, GROUP: tl.constexpr):
    # Consecutive programs walk down a band of GROUP tile-rows before moving right, so the blocks
    # resident at once share A rows and B columns in L2 instead of each streaming its own.
    pid = tl.program_id(0)
    tiles_m = tl.cdiv(M, BM)
    tiles_n = tl.cdiv(N, BN)
    per_band = GROUP * tiles_n
    first_m = (pid // per_band) * GROUP
    band_rows = tl.minimum(tiles_m - first_m, GROUP)
    tile_m = first_m + (pid % per_band) % band_rows
    tile_n = (pid % per_band) // band_rows

    rm = tile_m * BM + tl.arange(0, BM)
    rn = tile_n * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    a_ptrs = a_ptr + rm[:, None].to(tl.int64) * s_am + rk[None, :] * s_ak
    b_ptrs = b_ptr + rk[:, None].to(tl.int64) * s_bk + rn[None, :] * s_bn
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for kt in range(0, tl.cdiv(K, BK)):
        k_left = K - kt * BK  # the last K tile may be partial: its missing columns load as 0
        a = tl.load(a_ptrs, mask=(rm[:, None] < M) & (rk[None, :] < k_left), other=0.0)
        b = tl.load(b_ptrs, mask=(rk[:, None] < k_left) & (rn[None, :] < N), other=0.0)
        # fp16/bf16 -> fp32 accumulation on tensor cores; fp32 inputs go through TF32
        acc += tl.dot(a, b, allow_tf32=True)
        a_ptrs += BK * s_ak
        b_ptrs += BK * s_bk
    c_ptrs = c_ptr + rm[:, None].to(tl.int64) * s_cm + rn[None, :] * s_cn
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=(rm[:, None] < M) & (rn[None, :] < N))


def run_matmul(a, b, out=None):
    """C = A @ B in float32 for fp16, bf16 or fp32 (TF32) inputs of shapes (M, K) and (K, N)."""
    (m, k), n = a.shape, b.shape[1]
    out = torch.empty((m, n), dtype=torch.float32, device=a.device) if out is None else out
    # 128x128 tiles; fp32 tiles are twice the bytes, so a shorter K step keeps 3 stages in shared memory
    bk = 32 if a.dtype == torch.float32 else 64
    grid = (triton.cdiv(m, 128) * triton.cdiv(n, 128),)
    _matmul_kernel[grid](a, b, out, m, n, k, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
                         out.stride(0), out.stride(1), BM=128, BN=128, BK=bk, GROUP=8, num_warps=8, num_stages=3)
    return out


@triton.jit
def _attention_kernel(q_ptr, k_ptr, v_ptr, o_ptr, seq, head_dim, scale, s_qb, s_qs, s_kb, s_ks, s_vb, s_vs,
                      s_ob, s_os, BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr):
    # One program: BM query rows of one (batch*head). K/V stream through in BN-key tiles with an online
    # softmax: running max m, running denominator, unnormalised output rescaled when the max grows.
    bh = tl.program_id(1).to(tl.int64)
    rows = tl.program_id(0) * BM + tl.arange(0, BM)
    dims = tl.arange(0, BD)
    dim_ok = dims < head_dim  # BD is head_dim rounded up to a power of two >= 16 for tl.dot
    q = tl.load(q_ptr + bh * s_qb + rows[:, None] * s_qs + dims[None, :],
                mask=(rows[:, None] < seq) & dim_ok[None, :], other=0.0)
    m = tl.full((BM,), -float("inf"), tl.float32)
    denom = tl.zeros((BM,), dtype=tl.float32)
    acc = tl.zeros((BM, BD), dtype=tl.float32)
    for start in range(0, seq, BN):
        keys = start + tl.arange(0, BN)
        key_ok = keys < seq
        # K^T by addressing: element (d, j) of the tile is K[j, d]
        k_t = tl.load(k_ptr + bh * s_kb + keys[None, :] * s_ks + dims[:, None],
                      mask=key_ok[None, :] & dim_ok[:, None], other=0.0)
        s = tl.dot(q, k_t) * scale
        s = tl.where(key_ok[None, :], s, -float("inf"))
        # the first tile holds a real key for every row (seq >= 1), so m_new is finite from then on
        m_new = tl.maximum(m, tl.max(s, axis=1))
        p = tl.exp(s - m_new[:, None])
        alpha = tl.exp(m - m_new)
        denom = denom * alpha + tl.sum(p, axis=1)
        v = tl.load(v_ptr + bh * s_vb + keys[:, None] * s_vs + dims[None, :],
                    mask=key_ok[:, None] & dim_ok[None, :], other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m = m_new
    out = acc / denom[:, None]
    tl.store(o_ptr + bh * s_ob + rows[:, None] * s_os + dims[None, :], out.to(o_ptr.dtype.element_ty),
             mask=(rows[:, None] < seq) & dim_ok[None, :])


def run_attention(q, k, v, scale, out=None):
    """Non-causal attention forward softmax(Q K^T * scale) V for (batch*heads, seq, head_dim) tensors."""
    bh, seq, d = q.shape
    out = torch.empty(q.shape, dtype=torch.float32, device=q.device) if out is None else out
    bd = max(16, triton.next_power_of_2(d))
    grid = (triton.cdiv(seq, 128), bh)
    _attention_kernel[grid](q, k, v, out, seq, d, float(scale), q.stride(0), q.stride(1), k.stride(0), k.stride(1),
                            v.stride(0), v.stride(1), out.stride(0), out.stride(1), BM=128, BN=64, BD=bd,
                            num_warps=8, num_stages=3)
    return out
