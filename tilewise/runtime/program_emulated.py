"""Hand-written CUDA C++ on the emulated device: the source of the host library that the emulator's
compiler builds for a `Program` (emulator.h and tilewise.cuh come first, from the precompiled prelude),
and the launch stubs through which Python reaches each kernel.

A user's kernel differs from a generated one in what it may assume: 3-d blocks, `extern __shared__`
dynamic shared memory, threads that return before a `__syncthreads` their siblings still reach, and
the CUDA names (`__syncthreads`, `atomicAdd`, `warpSize`, ...). The header below adds those on top of
emulator.h; each CTA's threads are still real threads, and CTAs run one after another."""
from __future__ import annotations

import re

# The most dynamic shared memory any GPU gives one CTA (sm_90's 227 KB opt-in): the arena is one static
# buffer of this size, zero pages until touched.
MAX_DYNAMIC_SHARED = 232448

HEADER = r"""
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#define __host__
#define __constant__
#define __managed__
#define __noinline__ __attribute__((noinline))
static constexpr int warpSize = 32;

namespace tw_rt {
alignas(128) inline unsigned char dynamic_shared[TW_RT_MAX_DYNAMIC_SHARED];
// __syncthreads: a barrier whose phases also let threads that returned early take part (on a GPU, exited
// threads no longer hold a barrier back). A thread that has finished the CTA keeps arriving until the
// phase completes with every thread finished; the completion step samples that under the barrier.
struct cta_state {
  std::atomic<unsigned> finished{0};
  bool all_done = false;
  unsigned n = 0;
};
struct on_phase {
  cta_state* s;
  void operator()() noexcept {
    s->all_done = s->finished.load() == s->n;
    if (s->all_done) s->finished.store(0);
  }
};
inline std::barrier<on_phase>* cta_barrier = nullptr;
}  // namespace tw_rt

inline void __syncthreads() { tw_rt::cta_barrier->arrive_and_wait(); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
template <class T> inline T __ldg(const T* p) { return *p; }
template <class A, class B> inline auto min(A a, B b) { return b < a ? b : a; }
template <class A, class B> inline auto max(A a, B b) { return a < b ? b : a; }

template <class T> inline T atomicAdd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_add(v); }
template <class T> inline T atomicSub(T* p, T v) { return std::atomic_ref<T>(*p).fetch_sub(v); }
template <class T> inline T atomicExch(T* p, T v) { return std::atomic_ref<T>(*p).exchange(v); }
template <class T> inline T atomicAnd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_and(v); }
template <class T> inline T atomicOr(T* p, T v) { return std::atomic_ref<T>(*p).fetch_or(v); }
template <class T> inline T atomicXor(T* p, T v) { return std::atomic_ref<T>(*p).fetch_xor(v); }
template <class T> inline T atomicCAS(T* p, T expected, T desired) {
  std::atomic_ref<T>(*p).compare_exchange_strong(expected, desired);
  return expected;
}
template <class T> inline T atomicMax(T* p, T v) {
  std::atomic_ref<T> r(*p);
  T old = r.load();
  while (old < v && !r.compare_exchange_weak(old, v)) {}
  return old;
}
template <class T> inline T atomicMin(T* p, T v) {
  std::atomic_ref<T> r(*p);
  T old = r.load();
  while (v < old && !r.compare_exchange_weak(old, v)) {}
  return old;
}

namespace tw_rt {
// What Python checks a launch's arguments against: per parameter a kind and its size in bytes.
enum { OTHER = 0, POINTER = 1, SIGNED = 2, UNSIGNED = 3, BOOL = 4, FLOAT = 5 };
template <class T> constexpr int kind() {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_pointer_v<U> || std::is_null_pointer_v<U>) return POINTER;
  else if constexpr (std::is_same_v<U, bool>) return BOOL;
  else if constexpr (std::is_integral_v<U>) return std::is_signed_v<U> ? SIGNED : UNSIGNED;
  else if constexpr (std::is_floating_point_v<U>) return FLOAT;
  else return OTHER;
}
template <class... A> int describe(void (*)(A...), int* out, int cap) {
  int i = 0;
  ((i < cap / 2 ? (out[2 * i] = kind<A>(), out[2 * i + 1] = (int)sizeof(A), ++i) : ++i), ...);
  return (int)sizeof...(A);
}
template <class... A, std::size_t... I> void call(void (*f)(A...), void** p, std::index_sequence<I...>) {
  f(*static_cast<std::remove_cv_t<A>*>(p[I])...);
}
// d: grid x y z, block x y z. Returns 0, or 1 when the threads of a CTA could not be started.
template <class... A> int launch(void (*f)(A...), void** p, const unsigned* d) {
  std::lock_guard<std::mutex> guard(tw_emu::launch_mutex);
  unsigned gx = d[0], gy = d[1], gz = d[2], bx = d[3], by = d[4], bz = d[5];
  unsigned n = bx * by * bz;
  cta_state state;
  state.n = n;
  std::barrier<on_phase> bar(n, on_phase{&state});
  cta_barrier = &bar;
  std::vector<std::unique_ptr<std::barrier<>>> warp_bars;
  std::vector<tw_emu::warp_t> warps((n + 31) / 32);
  for (unsigned w = 0; w < warps.size(); ++w) {
    unsigned size = n - 32 * w < 32 ? n - 32 * w : 32;
    warp_bars.push_back(std::make_unique<std::barrier<>>(size));
    warps[w].bar = warp_bars.back().get();
    warps[w].size = size;
  }
  long long total = (long long)gx * gy * gz;
  std::vector<std::thread> threads;
  int status = 0;
  try {
    threads.reserve(n);
    for (unsigned t = 0; t < n; ++t) {
      threads.emplace_back([&, t] {
        threadIdx = {t % bx, (t / bx) % by, t / (bx * by)};
        blockDim = {bx, by, bz};
        gridDim = {gx, gy, gz};
        tw_emu::warp = &warps[t / 32];
        tw_emu::lane = t % 32;
        tw_emu::parity = 0;
        for (long long b = 0; b < total; ++b) {
          blockIdx = {(unsigned)(b % gx), (unsigned)((b / gx) % gy), (unsigned)(b / ((long long)gx * gy))};
          call(f, p, std::index_sequence_for<A...>{});
          state.finished.fetch_add(1);
          do bar.arrive_and_wait(); while (!state.all_done);
        }
      });
    }
  } catch (...) {
    status = 1;  // too many threads for this machine: the started ones wait for ever, so abort below
    fprintf(stderr, "tilewise emulator: could not start %u threads for one CTA\n", n);
    abort();
  }
  for (auto& th : threads) th.join();
  cta_barrier = nullptr;
  return status;
}
}  // namespace tw_rt
""".replace("TW_RT_MAX_DYNAMIC_SHARED", str(MAX_DYNAMIC_SHARED))

# `extern __shared__ T name[];` (any alignment attribute) -> a pointer into the arena, on the same lines.
_EXTERN_SHARED = re.compile(r"extern\s+__shared__\s+((?:[^;\[\]{}()]|\([^()]*\))*?)\s*(\w+)\s*\[\s*\]\s*;")
_ALIGN = re.compile(r"__align__\s*\(\s*\d+\s*\)|alignas\s*\([^)]*\)|__attribute__\s*\(\([^)]*\)\)")


def _extern_shared(m):
    ctype = " ".join(_ALIGN.sub(" ", m.group(1)).split())
    lines = m.group(0).count("\n")
    return f"static {ctype}* const {m.group(2)} = reinterpret_cast<{ctype}*>(tw_rt::dynamic_shared);" + "\n" * lines


def source(user_code: str, name: str, pre_include, stubs) -> str:
    """The whole translation unit: header, pre-includes, the user's code under its own name and line
    numbers (so the compiler's messages point at it), then one launch and one describe stub per kernel
    expression in `stubs`."""
    out = [HEADER]
    out += [f'#include "{h}"' for h in pre_include]
    out.append(f'#line 1 "{name}"')
    out.append(_EXTERN_SHARED.sub(_extern_shared, user_code))
    out.append('#line 1 "<tilewise launch stubs>"')
    for i, expr in enumerate(stubs):
        out.append(f'extern "C" TW_EXPORT int tw_rt_launch_{i}(void** p, const unsigned* d) '
                   f'{{ return tw_rt::launch(&{expr}, p, d); }}')
        out.append(f'extern "C" TW_EXPORT int tw_rt_params_{i}(int* out, int cap) '
                   f'{{ return tw_rt::describe(&{expr}, out, cap); }}')
    return "\n".join(out) + "\n"
