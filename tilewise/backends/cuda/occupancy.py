"""Theoretical occupancy: how many CTAs of a kernel one SM holds at once, and what share of the SM's warp
slots they fill, from the kernel's registers per thread, shared memory per CTA and threads per CTA.

The rules are those of CUDA's occupancy calculator (cuda_occupancy.h): registers are allocated per warp
in units of 256 and per SM sub-partition (four per SM on every architecture here); shared memory per
CTA is rounded up to the allocation granularity after adding what the system reserves for each CTA
(1 KB from sm_80 on); warps and CTAs per SM have hard maxima."""
from __future__ import annotations

import math
from dataclasses import dataclass

WARP = 32
REG_UNIT = 256        # registers are allocated per warp in multiples of this
SUB_PARTITIONS = 4    # register files per SM: a warp's registers come from one of them


@dataclass(frozen=True)
class SM:
    max_warps: int
    max_ctas: int
    shared_per_sm: int        # bytes, the largest carve-out
    regs_per_sm: int = 65536
    reserved_per_cta: int = 1024
    shared_granularity: int = 128


# Compute capability -> one SM's limits (CUDA C++ Programming Guide, "Technical Specifications per Compute
# Capability"; cuda_occupancy.h for the reserved bytes and granularity).
ARCHS = {
    70: SM(64, 32, 96 << 10, reserved_per_cta=0, shared_granularity=256),
    72: SM(64, 32, 96 << 10, reserved_per_cta=0, shared_granularity=256),
    75: SM(32, 16, 64 << 10, reserved_per_cta=0, shared_granularity=256),
    80: SM(64, 32, 164 << 10),
    86: SM(48, 16, 100 << 10),
    87: SM(48, 16, 164 << 10),
    89: SM(48, 24, 100 << 10),
    90: SM(64, 32, 228 << 10),
    100: SM(64, 32, 228 << 10),
    120: SM(48, 32, 128 << 10),
}


def sm_limits(arch: str) -> SM:
    """The table's entry for `arch` ("sm_90", "sm_90a"), or for an architecture it does not know, that of
    the nearest older one it does (the oldest for anything before sm_70)."""
    cc = int("".join(ch for ch in arch[3:] if ch.isdigit()))
    known = [k for k in ARCHS if k <= cc]
    return ARCHS[max(known) if known else min(ARCHS)]


def _round_up(n, unit):
    return -(-n // unit) * unit


def occupancy(arch: str, threads: int, shared_bytes: int, registers: int | None = None) -> dict:
    """`{"occupancy", "max_ctas_per_sm", "occupancy_limit"}`: resident warps over the SM's maximum, the
    CTAs one SM holds, and what bounds them ("warps", "CTAs", "registers" or "shared memory"; the first
    of those that gives the fewest CTAs). Without `registers` (the emulator runs no ptxas) they do not
    limit, so the figure is an upper bound."""
    sm = sm_limits(arch)
    warps = max(1, math.ceil(threads / WARP))
    limits = {"warps": sm.max_warps // warps, "CTAs": sm.max_ctas}
    if registers:
        per_warp = _round_up(registers * WARP, REG_UNIT)
        warps_per_sm = (sm.regs_per_sm // SUB_PARTITIONS // per_warp) * SUB_PARTITIONS
        limits["registers"] = warps_per_sm // warps
    per_cta = shared_bytes + sm.reserved_per_cta
    if per_cta:
        limits["shared memory"] = sm.shared_per_sm // _round_up(per_cta, sm.shared_granularity)
    limit = min(limits, key=lambda k: limits[k])  # dicts keep order: ties name the first
    ctas = limits[limit]
    return {"occupancy": round(ctas * warps / sm.max_warps, 4), "max_ctas_per_sm": ctas, "occupancy_limit": limit}
