// Host emulation of the CUDA execution model, so g++ can build the kernels that tilewise generates
// and run them on the CPU (the "cuda-emulated" backend, for tests without a GPU).
//
// A launch runs the grid's CTAs one after another; each CTA's threads are real std::threads that
// share one std::barrier (__syncthreads) and the kernel's `__shared__` arrays (function statics: one
// CTA at a time, so one copy is exactly "shared memory per CTA"). threadIdx/blockIdx/blockDim/gridDim
// are thread-local. Atomics go through std::atomic_ref. Include this before tilewise.cuh.
#pragma once
#define TW_EMULATOR 1

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <barrier>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#define __global__
#define __device__ inline
#define __forceinline__
#define __launch_bounds__(n)
#define __shared__ static
// Dynamic shared memory (kernels over 48 KB): a function static of the kernel's size, like static smem.
#define TW_DYNAMIC_SHARED(name, bytes) static __attribute__((aligned(16))) unsigned char name[bytes]
#define __align__(n) __attribute__((aligned(n)))
#define TW_DEV inline
// Libraries build with -fvisibility=hidden: each kernel library keeps its own kernel, statics and
// launch lock, whatever else the process has loaded; only the entry point is exported.
#define TW_EXPORT __attribute__((visibility("default")))

struct dim3 {
  unsigned x, y, z;
};
inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace tw_emu {
inline std::barrier<>* barrier = nullptr;
inline std::mutex launch_mutex;  // the kernel's statics (shared memory) serve one launch at a time
// printf goes back to Python (emulator.py formats it exactly as the reference backend does and writes
// to sys.stdout, so pytest's capsys sees it): print number, one pointer per value, the block index.
typedef void (*print_fn)(int, const void* const*, unsigned, unsigned, unsigned);
inline print_fn print_cb = nullptr;
inline std::mutex print_mutex;
}  // namespace tw_emu

inline void tw_print(int which, const void* const* values) {
  std::lock_guard<std::mutex> guard(tw_emu::print_mutex);
  if (tw_emu::print_cb) tw_emu::print_cb(which, values, blockIdx.x, blockIdx.y, blockIdx.z);
}

inline void tw_sync() { tw_emu::barrier->arrive_and_wait(); }
inline void tw_fence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline unsigned tw_atomic_cas32(unsigned* p, unsigned expected, unsigned desired) {
  std::atomic_ref<unsigned>(*p).compare_exchange_strong(expected, desired);
  return expected;  // the old value whether or not the exchange happened
}
inline unsigned long long tw_atomic_cas64(unsigned long long* p, unsigned long long expected,
                                          unsigned long long desired) {
  std::atomic_ref<unsigned long long>(*p).compare_exchange_strong(expected, desired);
  return expected;
}
inline unsigned tw_atomic_load32(unsigned* p) { return std::atomic_ref<unsigned>(*p).load(); }
inline unsigned long long tw_atomic_load64(unsigned long long* p) {
  return std::atomic_ref<unsigned long long>(*p).load();
}

// ---- warps: lanes of 32 consecutive threads (the last warp may be partial) ---------------------
// A shuffle writes the lane's value into its warp's exchange buffer, waits on the warp's barrier and
// reads the source lane's slot. Two buffers alternate, so one barrier per shuffle suffices: a lane can
// only write a buffer again after every lane has passed the next barrier, i.e. finished reading it.
// Every lane of the warp must take part (the generated code always passes the full mask).
namespace tw_emu {
struct warp_t {
  std::barrier<>* bar;
  unsigned size;
  unsigned long long slot[2][32];
  unsigned frag_a[32][4], frag_b[32][2];  // every lane's mma fragments
};
inline thread_local warp_t* warp = nullptr;
inline thread_local unsigned lane = 0, parity = 0;

template <class T>
inline T exchange(T v, unsigned src) {
  static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
  warp_t* w = warp;
  unsigned long long bits = 0;
  memcpy(&bits, &v, sizeof(T));
  unsigned p = parity;
  parity ^= 1u;
  w->slot[p][lane] = bits;
  w->bar->arrive_and_wait();
  if (src >= w->size) return v;  // no such lane: the hardware leaves the value unchanged
  T r;
  bits = w->slot[p][src];
  memcpy(&r, &bits, sizeof(T));
  return r;
}
// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}: rebuild A (16x16) and B (16x8) from the 32 lanes'
// fragments with the PTX ISA's layout (tilewise.cuh spells it out), then each lane computes its four
// elements of D. Products of 16-bit floats are exact; the sum is taken in double and rounded once.
template <class W>
inline void mma_m16n8k16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2], W widen) {
  warp_t* w = warp;
  for (int r = 0; r < 4; ++r) w->frag_a[lane][r] = a[r];
  for (int r = 0; r < 2; ++r) w->frag_b[lane][r] = b[r];
  w->bar->arrive_and_wait();
  double A[16][16], B[16][8];
  for (unsigned l = 0; l < 32; ++l) {
    unsigned gid = l >> 2, tig = l & 3;
    for (unsigned i = 0; i < 8; ++i) {  // a0..a7: rows gid, gid, gid+8, gid+8, gid, gid, gid+8, gid+8
      unsigned bits = (w->frag_a[l][i / 2] >> (16 * (i & 1))) & 0xffffu;
      A[gid + ((i & 2) ? 8 : 0)][tig * 2 + (i & 1) + (i >= 4 ? 8 : 0)] = widen(bits);
    }
    for (unsigned i = 0; i < 4; ++i) {  // b0..b3: rows 2tig, 2tig+1, 2tig+8, 2tig+9 of column gid
      unsigned bits = (w->frag_b[l][i / 2] >> (16 * (i & 1))) & 0xffffu;
      B[tig * 2 + (i & 1) + (i >= 2 ? 8 : 0)][gid] = widen(bits);
    }
  }
  w->bar->arrive_and_wait();  // every lane has read the fragments before any lane writes its next ones
  unsigned gid = lane >> 2, tig = lane & 3;
  for (unsigned i = 0; i < 4; ++i) {
    unsigned row = gid + (i >= 2 ? 8 : 0), col = tig * 2 + (i & 1);
    double sum = d[i];
    for (int k = 0; k < 16; ++k) sum += A[row][k] * B[k][col];
    d[i] = (float)sum;
  }
}

// ldmatrix.sync.aligned.m8n8.{x1,x2,x4}[.trans].shared.b16: like a shuffle, every lane publishes its row
// address in the warp's exchange buffer; lane l's register i is then built from the rows that lanes
// 8i..8i+7 handed over: row l/4, elements 2(l%4) and 2(l%4)+1 (.trans: element l/4 of rows 2(l%4) and
// 2(l%4)+1). TW_EMU_LDMATRIX_SWAP=1 deliberately swaps the two layouts (tests prove they can fail).
// A row that is not 16-byte aligned is a code generator bug (the hardware faults): abort.
template <int N, bool TRANS>
inline void ldmatrix(unsigned* r, const void* row) {
#if defined(TW_EMU_LDMATRIX_SWAP) && TW_EMU_LDMATRIX_SWAP
  constexpr bool trans = !TRANS;
#else
  constexpr bool trans = TRANS;
#endif
  if ((unsigned long long)row & 15u) {
    fprintf(stderr, "tilewise emulator: ldmatrix row address %p is not 16-byte aligned\n", row);
    abort();
  }
  warp_t* w = warp;
  unsigned p = parity;
  parity ^= 1u;
  w->slot[p][lane] = (unsigned long long)row;
  w->bar->arrive_and_wait();
  unsigned gid = lane >> 2, tig = lane & 3;
  for (int i = 0; i < N; ++i) {
    unsigned short lo, hi;
    if (trans) {
      lo = ((const unsigned short*)w->slot[p][8 * i + 2 * tig])[gid];
      hi = ((const unsigned short*)w->slot[p][8 * i + 2 * tig + 1])[gid];
    } else {
      const unsigned short* src = (const unsigned short*)w->slot[p][8 * i + gid];
      lo = src[2 * tig];
      hi = src[2 * tig + 1];
    }
    r[i] = (unsigned)lo | ((unsigned)hi << 16);
  }
}
}  // namespace tw_emu

// cp.async (tilewise.cuh's tw_cp_async): each thread queues its copies; commit closes a group, and
// wait<G> performs the oldest groups until at most G are left. So data only lands at the wait: a kernel
// that reads its tile before waiting (and the barrier after it) reads stale shared memory, as a GPU may.
// A misaligned shared-memory side or 16-byte source is a code generator bug (the hardware faults):
// abort. (4/8-byte copies are whole elements, where the plain path makes the same access.)
namespace tw_emu {
struct async_copy {
  void* dst;
  const void* src;
  int n, src_bytes;
};
inline thread_local std::vector<async_copy> async_open;                 // issued, not committed
inline thread_local std::vector<std::vector<async_copy>> async_groups;  // committed, oldest first
}  // namespace tw_emu
template <int N>
inline void tw_cp_async(void* dst, const void* src, int src_bytes) {
  if (((unsigned long long)dst | (N == 16 ? (unsigned long long)src : 0ull)) & (N - 1)) {
    fprintf(stderr, "tilewise emulator: cp.async of %d bytes from %p to %p is misaligned\n", N, src, dst);
    abort();
  }
  tw_emu::async_open.push_back({dst, src, N, src_bytes});
}
inline void tw_cp_async_commit() {
  tw_emu::async_groups.push_back(std::move(tw_emu::async_open));
  tw_emu::async_open.clear();
}
template <int G>
inline void tw_cp_async_wait() {
  auto& groups = tw_emu::async_groups;
  while (groups.size() > (size_t)G) {
    for (const auto& c : groups.front())
      for (int b = 0; b < c.n; ++b)
        ((unsigned char*)c.dst)[b] = b < c.src_bytes ? ((const unsigned char*)c.src)[b] : (unsigned char)0;
    groups.erase(groups.begin());
  }
}

inline void __syncwarp(unsigned mask = 0xffffffffu) { (void)mask; tw_emu::warp->bar->arrive_and_wait(); }
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  (void)mask;
  unsigned l = tw_emu::lane, seg = l & ~(unsigned)(width - 1), src = l ^ (unsigned)lane_mask;
  return tw_emu::exchange(v, (src & ~(unsigned)(width - 1)) == seg ? src : l);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  (void)mask;
  unsigned l = tw_emu::lane, seg = l & ~(unsigned)(width - 1), src = l + delta;
  return tw_emu::exchange(v, src < seg + (unsigned)width ? src : l);
}
template <class T>
inline T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
  (void)mask;
  unsigned seg = tw_emu::lane & ~(unsigned)(width - 1);
  return tw_emu::exchange(v, seg + ((unsigned)src_lane & (unsigned)(width - 1)));
}

namespace tw_emu {
// Run `body` (one call = one thread of one CTA) over every CTA of the grid with `nthreads` threads,
// x fastest. Stops after the first CTA that sets status[0] (a failed assert). Returns status[0].
template <class F>
int launch(unsigned gx, unsigned gy, unsigned gz, unsigned nthreads, int* status, print_fn print, F body) {
  std::lock_guard<std::mutex> guard(launch_mutex);
  print_cb = print;
  std::barrier<> bar(nthreads);
  barrier = &bar;
  long long total = (long long)gx * gy * gz;
  std::vector<std::unique_ptr<std::barrier<>>> warp_bars;
  std::vector<warp_t> warps((nthreads + 31) / 32);
  for (unsigned w = 0; w < warps.size(); ++w) {
    unsigned size = nthreads - 32 * w < 32 ? nthreads - 32 * w : 32;
    warp_bars.push_back(std::make_unique<std::barrier<>>(size));
    warps[w].bar = warp_bars.back().get();
    warps[w].size = size;
  }
  // The end of a CTA: every thread decides whether to go on from one reading of the status, taken while
  // all of them wait. (Each reading it after the barrier let a fast thread fail an assert in the next
  // CTA before a slow one had looked: the slow one stopped, the fast one waited for it forever.)
  bool stop = false;
  auto sample = [&]() noexcept { stop = std::atomic_ref<int>(status[0]).load() != 0; };
  std::barrier<decltype(sample)> done(nthreads, sample);
  std::vector<std::thread> threads;
  threads.reserve(nthreads);
  for (unsigned t = 0; t < nthreads; ++t) {
    threads.emplace_back([&, t] {
      threadIdx = {t, 0, 0};
      warp = &warps[t / 32];
      lane = t % 32;
      parity = 0;
      blockDim = {nthreads, 1, 1};
      gridDim = {gx, gy, gz};
      for (long long b = 0; b < total; ++b) {
        blockIdx = {(unsigned)(b % gx), (unsigned)((b / gx) % gy), (unsigned)(b / ((long long)gx * gy))};
        body();
        done.arrive_and_wait();  // the CTA is done (every thread) before the next one reuses shared memory
        if (stop) break;
      }
    });
  }
  for (auto& th : threads) th.join();
  barrier = nullptr;
  print_cb = nullptr;
  return status[0];
}
}  // namespace tw_emu
