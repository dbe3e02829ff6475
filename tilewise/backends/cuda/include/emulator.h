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

#include <atomic>
#include <barrier>
#include <mutex>
#include <thread>
#include <vector>

#define __global__
#define __device__ inline
#define __forceinline__
#define __launch_bounds__(n)
#define __shared__ static
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
  std::vector<std::thread> threads;
  threads.reserve(nthreads);
  for (unsigned t = 0; t < nthreads; ++t) {
    threads.emplace_back([&, t] {
      threadIdx = {t, 0, 0};
      blockDim = {nthreads, 1, 1};
      gridDim = {gx, gy, gz};
      for (long long b = 0; b < total; ++b) {
        blockIdx = {(unsigned)(b % gx), (unsigned)((b / gx) % gy), (unsigned)(b / ((long long)gx * gy))};
        body();
        bar.arrive_and_wait();  // the CTA is done (every thread) before the next one reuses shared memory
        if (std::atomic_ref<int>(status[0]).load() != 0) break;
      }
    });
  }
  for (auto& th : threads) th.join();
  barrier = nullptr;
  print_cb = nullptr;
  return status[0];
}
}  // namespace tw_emu
