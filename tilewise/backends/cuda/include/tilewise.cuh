// Tile primitives for the CUDA C++ that tilewise generates (tilewise/backends/cuda/codegen.py).
//
// Self-contained on purpose: NVRTC from the pip wheels has no CUDA headers (no cuda_fp16.h before
// NVRTC 13.3's bundled headers), so fp16 goes through inline PTX and bf16/tf32 rounding is integer
// code. Generated kernels reach hardware intrinsics (barriers, atomics, fences, ldmatrix, cp.async) only via the
// tw_* wrappers below, which emulator.h re-implements with std::thread/std::barrier/std::atomic_ref
// so the host C++ compiler can build and run the very same kernel source.
//
// Every function here implements the reference backend's semantics
// (tilewise/backends/reference/semantics.py) exactly: Python floor division and modulo, saturating
// float->int casts, NaN-propagating min/max, NumPy's float rounding for narrow types.
#pragma once

#ifndef TW_EMULATOR
#define TW_DEV __device__ __forceinline__
// Kernels over 48 KB of shared memory: the launch requests `bytes` (and opts into it; driver_cuda.py).
#define TW_DYNAMIC_SHARED(name, bytes) extern __shared__ __align__(16) unsigned char name[]
#endif

typedef signed char tw_i8;
typedef short tw_i16;
typedef int tw_i32;
typedef long long tw_i64;
typedef unsigned char tw_u8;
typedef unsigned short tw_u16;
typedef unsigned int tw_u32;
typedef unsigned long long tw_u64;

// An array argument: data pointer, shape and strides in elements (strided views are honoured).
template <class T, int ND>
struct tw_array {
  T* ptr;
  tw_i64 shape[ND];
  tw_i64 stride[ND];
};

// Narrow floats are stored as their bits; arithmetic widens to float (or double) and rounds once.
struct tw_f16 { tw_u16 bits; };
struct tw_bf16 { tw_u16 bits; };

template <class D, class S>
TW_DEV D tw_bitcast(S x) {
  union { S s; D d; } u;
  u.s = x;
  return u.d;
}

TW_DEV float tw_f32_bits(tw_u32 b) { return tw_bitcast<float>(b); }
TW_DEV double tw_f64_bits(tw_u64 b) { return tw_bitcast<double>(b); }
TW_DEV tw_f16 tw_f16_bits(tw_u16 b) { tw_f16 h; h.bits = b; return h; }
TW_DEV tw_bf16 tw_bf16_bits(tw_u16 b) { tw_bf16 h; h.bits = b; return h; }

TW_DEV bool tw_isnan(float x) { return x != x; }
TW_DEV bool tw_isnan(double x) { return x != x; }
TW_DEV bool tw_isinf(float x) { return x == tw_f32_bits(0x7f800000u) || x == tw_f32_bits(0xff800000u); }
TW_DEV bool tw_isinf(double x) {
  return x == tw_f64_bits(0x7ff0000000000000ull) || x == tw_f64_bits(0xfff0000000000000ull);
}
TW_DEV bool tw_isfinite(float x) { return !tw_isnan(x) && !tw_isinf(x); }
TW_DEV bool tw_isfinite(double x) { return !tw_isnan(x) && !tw_isinf(x); }

// ---- narrow float conversions ------------------------------------------------------------------

// Round |x| (finite, double) to a binary float with `man` mantissa bits and minimum normal exponent
// `emin`, ties to even; returns the magnitude bits (emax_field << man on overflow). Scaling by powers
// of two is exact, so one rint() is the only rounding.
TW_DEV tw_u32 tw_soft_round(double ax, int man, int emin, int ebias, int emax_field) {
  if (ax < ldexp(1.0, emin)) return (tw_u32)rint(ldexp(ax, man - emin));  // subnormal (or the first normal)
  int e;
  frexp(ax, &e);
  e -= 1;  // ax in [2^e, 2^(e+1))
  double q = rint(ldexp(ax, man - e));
  if (q == ldexp(1.0, man + 1)) { q = ldexp(1.0, man); e += 1; }
  if (e + ebias >= emax_field) return (tw_u32)emax_field << man;  // overflow: infinity
  return ((tw_u32)(e + ebias) << man) | (tw_u32)(q - ldexp(1.0, man));
}

#if defined(TW_EMULATOR)

inline tw_f16 tw_f16_from_double(double x) {
  tw_u64 b = tw_bitcast<tw_u64>(x);
  tw_u16 sign = (tw_u16)((b >> 48) & 0x8000u);
  if (x != x) return tw_f16_bits(sign | 0x7e00u);
  double ax = x < 0 ? -x : x;
  if (tw_isinf(ax)) return tw_f16_bits(sign | 0x7c00u);
  return tw_f16_bits(sign | (tw_u16)tw_soft_round(ax, 10, -14, 15, 31));
}
inline tw_f16 tw_narrow_f16(float x) { return tw_f16_from_double((double)x); }
inline tw_f16 tw_narrow_f16(double x) { return tw_f16_from_double(x); }
inline float tw_widen(tw_f16 h) {
  tw_u32 sign = (tw_u32)(h.bits & 0x8000u) << 16, e = (h.bits >> 10) & 0x1f, m = h.bits & 0x3ffu;
  if (e == 31) return tw_f32_bits(sign | 0x7f800000u | (m << 13));
  if (e == 0) {
    float v = (float)ldexp((double)m, -24);
    return sign ? -v : v;
  }
  return tw_f32_bits(sign | ((e + 112) << 23) | (m << 13));
}
#else
TW_DEV tw_f16 tw_narrow_f16(float x) {
  tw_u16 r;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r) : "f"(x));
  return tw_f16_bits(r);
}
TW_DEV tw_f16 tw_narrow_f16(double x) {  // one rounding, as NumPy's float64 -> float16
  tw_u16 r;
  asm("cvt.rn.f16.f64 %0, %1;" : "=h"(r) : "d"(x));
  return tw_f16_bits(r);
}
TW_DEV float tw_widen(tw_f16 h) {
  float r;
  asm("cvt.f32.f16 %0, %1;" : "=f"(r) : "h"(h.bits));
  return r;
}
#endif

// bf16 from float: round to nearest even on the bits (portable, identical on host and device).
TW_DEV tw_bf16 tw_narrow_bf16(float x) {
  tw_u32 u = tw_bitcast<tw_u32>(x);
  if (x != x) return tw_bf16_bits((tw_u16)((u >> 16) | 0x40u));
  u += 0x7fffu + ((u >> 16) & 1u);
  return tw_bf16_bits((tw_u16)(u >> 16));
}
// ml_dtypes converts float64 -> bfloat16 through float32 (two roundings); astype semantics follow it.
TW_DEV tw_bf16 tw_narrow_bf16(double x) { return tw_narrow_bf16((float)x); }
TW_DEV float tw_widen(tw_bf16 h) { return tw_f32_bits((tw_u32)h.bits << 16); }
// float8: the same rounding on host and device (integer code, no cuda_fp8.h); from double through
// float, as ml_dtypes does. e4m3fn has no infinity: overflow and infinities become NaN.
struct tw_f8e4m3 { tw_u8 bits; };
struct tw_f8e5m2 { tw_u8 bits; };
TW_DEV tw_f8e4m3 tw_f8e4m3_bits(tw_u8 b) { tw_f8e4m3 h; h.bits = b; return h; }
TW_DEV tw_f8e5m2 tw_f8e5m2_bits(tw_u8 b) { tw_f8e5m2 h; h.bits = b; return h; }
TW_DEV tw_f8e4m3 tw_narrow_f8e4m3(float x) {
  tw_u8 sign = (tw_u8)((tw_bitcast<tw_u32>(x) >> 24) & 0x80u);
  if (!tw_isfinite(x)) return tw_f8e4m3_bits(sign | 0x7fu);
  tw_u32 r = tw_soft_round(x < 0 ? -(double)x : (double)x, 3, -6, 7, 16);
  return tw_f8e4m3_bits(sign | (tw_u8)(r > 0x7eu ? 0x7fu : r));
}
TW_DEV tw_f8e5m2 tw_narrow_f8e5m2(float x) {
  tw_u8 sign = (tw_u8)((tw_bitcast<tw_u32>(x) >> 24) & 0x80u);
  if (x != x) return tw_f8e5m2_bits(sign | 0x7eu);
  if (tw_isinf(x)) return tw_f8e5m2_bits(sign | 0x7cu);
  return tw_f8e5m2_bits(sign | (tw_u8)tw_soft_round(x < 0 ? -(double)x : (double)x, 2, -14, 15, 31));
}
TW_DEV tw_f8e4m3 tw_narrow_f8e4m3(double x) { return tw_narrow_f8e4m3((float)x); }
TW_DEV tw_f8e5m2 tw_narrow_f8e5m2(double x) { return tw_narrow_f8e5m2((float)x); }
TW_DEV float tw_widen(tw_f8e4m3 h) {
  int e = (h.bits >> 3) & 0xf, m = h.bits & 7;
  float v = (h.bits & 0x7f) == 0x7f ? tw_f32_bits(0x7fc00000u)
            : e == 0 ? (float)ldexp((double)m, -9) : (float)ldexp((double)(8 + m), e - 10);
  return (h.bits & 0x80) ? -v : v;
}
TW_DEV float tw_widen(tw_f8e5m2 h) { return tw_widen(tw_f16_bits((tw_u16)(h.bits << 8))); }  // f16's top byte
// The language's cast into float8 saturates finite values (cvt.satfinite): clip, keep NaN.
TW_DEV float tw_satfinite(float f, float hi) { return f != f ? f : (f > hi ? hi : (f < -hi ? -hi : f)); }
TW_DEV float tw_widen(float x) { return x; }
TW_DEV double tw_widen(double x) { return x; }

// x as float32 rounded to odd when inexact: a later round-to-nearest-even into <= 22 significant bits
// (bf16, tf32) then equals one correct rounding of x (the language's cast, not NumPy's astype).
TW_DEV float tw_f32_odd(double x) {
  float r = (float)x;
  if ((tw_bitcast<tw_u32>(r) & 1u) == 0 && tw_isfinite(r) && (double)r != x)
    r = nextafterf(r, x > (double)r ? tw_f32_bits(0x7f800000u) : tw_f32_bits(0xff800000u));
  return r;
}
TW_DEV float tw_round_tf32(float x) {
  if (!tw_isfinite(x)) return x;
  tw_u32 u = tw_bitcast<tw_u32>(x);
  return tw_f32_bits((u + 0xfffu + ((u >> 13) & 1u)) & 0xffffe000u);
}

// ---- integers: wrap-around arithmetic (no signed-overflow UB), Python division ----------------

template <class T> struct tw_traits;
#define TW_TRAITS(T, W, LO, HI, SIGNED)                               \
  template <> struct tw_traits<T> {                                   \
    typedef W wide;                                                   \
    static TW_DEV T lo() { return (T)(LO); }                          \
    static TW_DEV T hi() { return (T)(HI); }                          \
    static const bool is_signed = SIGNED;                             \
  };
TW_TRAITS(tw_i8, tw_u32, -128, 127, true)
TW_TRAITS(tw_i16, tw_u32, -32768, 32767, true)
TW_TRAITS(tw_i32, tw_u32, -2147483647 - 1, 2147483647, true)
TW_TRAITS(tw_i64, tw_u64, -9223372036854775807LL - 1, 9223372036854775807LL, true)
TW_TRAITS(tw_u8, tw_u32, 0, 255, false)
TW_TRAITS(tw_u16, tw_u32, 0, 65535, false)
TW_TRAITS(tw_u32, tw_u32, 0, 4294967295u, false)
TW_TRAITS(tw_u64, tw_u64, 0, 18446744073709551615ull, false)
#undef TW_TRAITS

template <class T> TW_DEV T tw_iadd(T a, T b) { typedef typename tw_traits<T>::wide W; return (T)((W)a + (W)b); }
template <class T> TW_DEV T tw_isub(T a, T b) { typedef typename tw_traits<T>::wide W; return (T)((W)a - (W)b); }
template <class T> TW_DEV T tw_imul(T a, T b) { typedef typename tw_traits<T>::wide W; return (T)((W)a * (W)b); }
template <class T> TW_DEV T tw_ineg(T a) { typedef typename tw_traits<T>::wide W; return (T)((W)0 - (W)a); }
template <class T> TW_DEV T tw_iabs(T a) { return a < (T)0 ? tw_ineg(a) : a; }

// Python's a // b and a % b; a zero divisor gives 0, and MIN // -1 wraps like NumPy.
template <class T> TW_DEV T tw_ifloordiv(T a, T b) {
  if (b == (T)0) return (T)0;
  if (tw_traits<T>::is_signed && b == (T)-1) return tw_ineg(a);
  T q = (T)(a / b);
  if (tw_traits<T>::is_signed && (T)(a % b) != (T)0 && ((a < (T)0) != (b < (T)0))) q = (T)(q - 1);
  return q;
}
template <class T> TW_DEV T tw_imod(T a, T b) {
  if (b == (T)0) return (T)0;
  if (tw_traits<T>::is_signed && b == (T)-1) return (T)0;
  T r = (T)(a % b);
  if (tw_traits<T>::is_signed && r != (T)0 && ((r < (T)0) != (b < (T)0))) r = (T)(r + b);
  return r;
}
// Integer power with wrap-around; a negative exponent gives 1/x truncated (0 unless x is 1 or -1).
template <class T> TW_DEV T tw_ipow(T x, T y) {
  if (tw_traits<T>::is_signed && y < (T)0) {
    if (x == (T)1) return (T)1;
    if (x == (T)-1) return (T)((tw_i64)y % 2 == 0 ? 1 : -1);
    return (T)0;
  }
  T r = (T)1;
  tw_u64 e = (tw_u64)y;
  while (e) {
    if (e & 1u) r = tw_imul(r, x);
    x = tw_imul(x, x);
    e >>= 1;
  }
  return r;
}
// Shifts by a negative amount or by >= the width give 0 (or the sign fill for >> of a negative).
template <class T> TW_DEV T tw_shl(T x, T y) {
  typedef typename tw_traits<T>::wide W;
  if ((tw_traits<T>::is_signed && y < (T)0) || (tw_u64)y >= sizeof(T) * 8) return (T)0;
  return (T)((W)x << (int)y);
}
template <class T> TW_DEV T tw_shr(T x, T y) {
  if ((tw_traits<T>::is_signed && y < (T)0) || (tw_u64)y >= sizeof(T) * 8)
    return (tw_traits<T>::is_signed && x < (T)0) ? (T)-1 : (T)0;
  return (T)(x >> (int)y);  // arithmetic for signed types (C++20 and CUDA)
}
// float -> integer: truncate, NaN -> 0, saturate at the type's range.
template <class T> TW_DEV T tw_f2i(double x) {
  double f = trunc(x);
  if (f != f) return (T)0;
  if (f <= (double)tw_traits<T>::lo()) return tw_traits<T>::lo();
  if (f >= (double)tw_traits<T>::hi()) return tw_traits<T>::hi();
  return (T)f;
}

// ---- floats: NumPy's floor_divide / remainder / maximum / minimum ------------------------------

template <class F> TW_DEV F tw_copysign_(F mag, F sgn) {
  F m = mag < (F)0 ? -mag : mag;
  return (sgn < (F)0 || (sgn == (F)0 && (F)1 / sgn < (F)0)) ? -m : m;
}
template <class F> TW_DEV F tw_fmod_(F a, F b);
template <> TW_DEV float tw_fmod_<float>(float a, float b) { return fmodf(a, b); }
template <> TW_DEV double tw_fmod_<double>(double a, double b) { return fmod(a, b); }
template <class F> TW_DEV F tw_floor_(F a);
template <> TW_DEV float tw_floor_<float>(float a) { return floorf(a); }
template <> TW_DEV double tw_floor_<double>(double a) { return floor(a); }

template <class F> TW_DEV F tw_ffloordiv(F a, F b) {
  if (b == (F)0) return a / b;
  F mod = tw_fmod_(a, b);
  F div = (a - mod) / b;
  if (mod != (F)0) {
    if ((b < (F)0) != (mod < (F)0)) div -= (F)1;
  }
  F fl;
  if (div != (F)0) {
    fl = tw_floor_(div);
    if (div - fl > (F)0.5) fl += (F)1;
  } else {
    fl = tw_copysign_((F)0, a / b);
  }
  return fl;
}
template <class F> TW_DEV F tw_fmod(F a, F b) {
  F mod = tw_fmod_(a, b);
  if (b == (F)0) return mod;
  if (mod != (F)0) {
    if ((b < (F)0) != (mod < (F)0)) mod += b;
  } else {
    mod = tw_copysign_((F)0, b);
  }
  return mod;
}
template <class F> TW_DEV F tw_fmax(F a, F b) { return a != a ? a : (b != b ? b : (a >= b ? a : b)); }
template <class F> TW_DEV F tw_fmin(F a, F b) { return a != a ? a : (b != b ? b : (a <= b ? a : b)); }

// ---- loops ---------------------------------------------------------------------------------------

TW_DEV tw_i64 tw_trip_count(tw_i64 lb, tw_i64 ub, tw_i64 step) {
  tw_i64 n = 0;
  if (step > 0) n = (ub - lb + step - 1) / step;
  else if (step < 0) n = (lb - ub - step - 1) / (-step);
  return n > 0 ? n : 0;
}

// ---- intrinsics: the only hardware entry points (emulator.h has the host versions) ---------------

#ifndef TW_EMULATOR
TW_DEV void tw_sync() { __syncthreads(); }
TW_DEV void tw_fence() { __threadfence(); }
TW_DEV tw_u32 tw_atomic_cas32(tw_u32* p, tw_u32 expected, tw_u32 desired) { return atomicCAS(p, expected, desired); }
TW_DEV tw_u64 tw_atomic_cas64(tw_u64* p, tw_u64 expected, tw_u64 desired) {
  return atomicCAS((unsigned long long*)p, expected, desired);
}
TW_DEV tw_u32 tw_atomic_load32(tw_u32* p) { return *(volatile tw_u32*)p; }
TW_DEV tw_u64 tw_atomic_load64(tw_u64* p) { return *(volatile tw_u64*)p; }
#endif

// ---- warp-level primitives (emulator.h implements __shfl_xor_sync/__syncwarp for real) ----------

// The lanes that reduce one row together: `want` (a power of two <= 32) or fewer, so that groups never
// straddle a warp or the end of the CTA. Generated kernels run with a blockDim.x that is a multiple of
// 32 (the GPU launch) or a power of two below 32 (the emulator's test setting).
TW_DEV int tw_lane_group(int want) {
  int g = want;
  while (g > 1 && (int)blockDim.x % g != 0) g >>= 1;
  return g;
}
// A butterfly shuffle of any type of up to 8 bytes, in 32-bit words (bool, 8/16-bit ints, narrow floats).
template <class T>
TW_DEV T tw_shfl_xor(T v, int lane_mask) {
  union { T t; tw_u32 w[(sizeof(T) + 3) / 4]; } u;
  u.w[0] = 0u;
  u.t = v;
  for (int k = 0; k < (int)((sizeof(T) + 3) / 4); ++k) u.w[k] = __shfl_xor_sync(0xffffffffu, u.w[k], lane_mask);
  return u.t;
}
// argmax/argmin: keep (v, i) or take (ov, oi)? NumPy's rule whatever the order of combining: the
// first NaN wins, then the larger (smaller) value, then the lower index; index -1 marks "no element".
template <bool MAX, class T>
TW_DEV void tw_arg_combine(T& v, int& i, T ov, int oi) {
  if (oi < 0) return;
  bool take;
  if (i < 0) take = true;
  else if (v != v) take = (ov != ov) && oi < i;
  else if (ov != ov) take = true;
  else if (MAX ? ov > v : ov < v) take = true;
  else take = !(MAX ? ov < v : ov > v) && oi < i;
  if (take) { v = ov; i = oi; }
}

// 16 bytes, aligned: one 128-bit global access (ld.global.v4 / st.global.v4).
struct __align__(16) tw_v16 { tw_u32 x, y, z, w; };
// The vectorised path applies when the address is 16-byte aligned (checked at run time).
TW_DEV bool tw_aligned16(const void* p) { return ((tw_u64)p & 15u) == 0; }
// A 128-bit global load into four registers (inline PTX: a struct copy may go through local memory).
TW_DEV tw_v16 tw_load16(const void* p) {
  tw_v16 v;
#ifdef TW_EMULATOR
  v = *(const tw_v16*)p;
#else
  asm volatile("ld.global.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
#endif
  return v;
}
// A 128-bit global store of 16 bytes built in registers. Inline PTX, because the compiler splits a
// plain struct copy out of a register array into scalar stores (it cannot see the run-time check).
TW_DEV void tw_store16(void* p, tw_v16 v) {
#ifdef TW_EMULATOR
  *(tw_v16*)p = v;
#else
  asm volatile("st.global.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
               : "memory");
#endif
}

// ---- cp.async: global -> shared copies that bypass the registers (sm_80+) -------------------------
// tw_cp_async<N>(dst, src, src_bytes) copies N (4, 8 or 16) bytes to shared memory: the first src_bytes
// from global memory, the rest zero (cp.async's src-size operand: zero padding for free). dst and src
// are aligned to N (the caller checks src for N == 16; smaller copies are whole elements). Nothing is
// written for sure until tw_cp_async_commit() closes the thread's group of copies and
// tw_cp_async_wait<G>() waits until at most G groups are still in flight; other threads see the data
// only after the barrier that follows. Before sm_80 the copy is a plain load and store.
template <int N>
TW_DEV void tw_copy_bytes(void* dst, const void* src, int src_bytes) {
  if (src_bytes == N) {
    if (N == 16) *(tw_v16*)dst = tw_load16(src);
    else if (N == 8) *(tw_u64*)dst = *(const tw_u64*)src;
    else *(tw_u32*)dst = *(const tw_u32*)src;
    return;
  }
  for (int b = 0; b < N; ++b) ((tw_u8*)dst)[b] = b < src_bytes ? ((const tw_u8*)src)[b] : (tw_u8)0;
}
#ifndef TW_EMULATOR
template <int N>
TW_DEV void tw_cp_async(void* dst, const void* src, int src_bytes) {
#if __CUDA_ARCH__ >= 800
  const tw_u32 d = (tw_u32)__cvta_generic_to_shared(dst);
  if (N == 16)  // .cg: 16-byte copies skip L1 (the tile is read once, from shared memory)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(d), "l"(src), "r"(src_bytes) : "memory");
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;" ::"r"(d), "l"(src), "n"(N), "r"(src_bytes)
                 : "memory");
#else
  tw_copy_bytes<N>(dst, src, src_bytes);
#endif
}
TW_DEV void tw_cp_async_commit() {
#if __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}
template <int G>
TW_DEV void tw_cp_async_wait() {
#if __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;" ::"n"(G) : "memory");
#endif
}
#endif

// ---- tensor cores: one warp-wide mma.sync.aligned.m16n8k16 (fp16/bf16 in, fp32 accumulate) -------
// D (16x8) += A (16x16, row-major) * B (16x8, column-major), fragments as the PTX ISA lays them out, with
// gid = lane / 4 and tig = lane % 4 (each 32-bit register holds two elements, the lower index in the
// low half):
//   a[0]: A[gid][2tig, 2tig+1]   a[1]: A[gid+8][2tig, 2tig+1]   a[2], a[3]: the same at columns + 8
//   b[0]: B[2tig, 2tig+1][gid]   b[1]: B[2tig+8, 2tig+9][gid]
//   d[0], d[1]: D[gid][2tig, 2tig+1]   d[2], d[3]: D[gid+8][2tig, 2tig+1]
// Generated code calls it only where __CUDA_ARCH__ >= 800 (or in the emulator, whose emulator.h
// rebuilds the matrices from every lane's fragments with this layout), with all 32 lanes of the warp.
#ifndef TW_EMULATOR
template <class T> TW_DEV void tw_mma_m16n8k16(float (&d)[4], const tw_u32 (&a)[4], const tw_u32 (&b)[2]);
// One specialisation per input type; only the PTX type name differs.
#define TW_MMA_M16N8K16(T, PTX)                                                                       \
  template <> TW_DEV void tw_mma_m16n8k16<T>(float (&d)[4], const tw_u32 (&a)[4], const tw_u32 (&b)[2]) { \
    TW_MMA_ASM("mma.sync.aligned.m16n8k16.row.col.f32." PTX "." PTX ".f32 {%0, %1, %2, %3}, "         \
               "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"                                        \
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])                                       \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));                   \
  }
#if __CUDA_ARCH__ >= 800
#define TW_MMA_ASM(...) asm volatile(__VA_ARGS__)
#else
#define TW_MMA_ASM(...)
#endif
TW_MMA_M16N8K16(tw_f16, "f16")
TW_MMA_M16N8K16(tw_bf16, "bf16")
#undef TW_MMA_M16N8K16
#undef TW_MMA_ASM
#else
template <class T>
inline void tw_mma_m16n8k16(float (&d)[4], const tw_u32 (&a)[4], const tw_u32 (&b)[2]) {
  tw_emu::mma_m16n8k16(d, a, b, [](tw_u32 h) { return (double)tw_widen(tw_bitcast<T>((tw_u16)h)); });
}
#endif
// ldmatrix: the warp loads 8x8 matrices of 16-bit elements from shared memory straight into mma fragments.
// Lane 8i + r hands over the address of row r of matrix i (16 bytes, 16-byte aligned); register i of
// lane l then holds row l/4, columns 2(l%4) and 2(l%4)+1 of matrix i (.trans: rows 2(l%4) and 2(l%4)+1
// of column l/4, i.e. the transposed matrix's fragment). So A's four 8x8 quarters (x4) are a[0..3] and
// the two 8x8 halves of a row-major K x 8 B (x2.trans) are b[0..1]. emulator.h exchanges the addresses
// across the warp the same way. Called only where __CUDA_ARCH__ >= 800 (with the mma), all 32 lanes.
#ifndef TW_EMULATOR
TW_DEV void tw_ldmatrix_x4(tw_u32 (&r)[4], const void* row) {
#if __CUDA_ARCH__ >= 750
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"((tw_u32)__cvta_generic_to_shared(row))
               : "memory");
#endif
}
TW_DEV void tw_ldmatrix_x2_trans(tw_u32 (&r)[2], const void* row) {
#if __CUDA_ARCH__ >= 750
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];"
               : "=r"(r[0]), "=r"(r[1])
               : "r"((tw_u32)__cvta_generic_to_shared(row))
               : "memory");
#endif
}
#else
inline void tw_ldmatrix_x4(tw_u32 (&r)[4], const void* row) { tw_emu::ldmatrix<4, false>(r, row); }
inline void tw_ldmatrix_x2_trans(tw_u32 (&r)[2], const void* row) { tw_emu::ldmatrix<2, true>(r, row); }
#endif
// Two adjacent 16-bit elements (the first at an even index, 4-byte aligned) as one fragment register.
template <class T> TW_DEV tw_u32 tw_pair(const T* p) { return *(const tw_u32*)p; }
// Two 16-bit elements from anywhere (a column of a row-major B) as one fragment register.
template <class T> TW_DEV tw_u32 tw_pack2(T lo, T hi) { return (tw_u32)lo.bits | ((tw_u32)hi.bits << 16); }

// One atomic read-modify-write of *p with `f(old) -> new`, returning old: a compare-and-swap loop on
// the aligned 32- or 64-bit word that holds *p, so every dtype (8/16-bit included) and every update
// rule of the language (NaN-propagating max, fp16 rounding) is atomic in the same way. Next step:
// native atomicAdd/atomicMax fast paths for the types the hardware has.
template <class T, class F>
TW_DEV T tw_atomic_rmw(T* p, F f) {
  tw_fence();
  T result;
  if (sizeof(T) == 8) {
    tw_u64* w = (tw_u64*)p;
    tw_u64 old = tw_atomic_load64(w);
    for (;;) {
      T o = tw_bitcast<T>(old);
      tw_u64 prev = tw_atomic_cas64(w, old, tw_bitcast<tw_u64>(f(o)));
      if (prev == old) { result = o; break; }
      old = prev;
    }
  } else {
    tw_u64 addr = (tw_u64)p;
    tw_u32* w = (tw_u32*)(addr & ~(tw_u64)3);
    int shift = (int)(addr & 3) * 8;
    tw_u32 mask = sizeof(T) == 4 ? 0xffffffffu : (((tw_u32)1 << (sizeof(T) * 8)) - 1) << shift;
    tw_u32 old = tw_atomic_load32(w);
    for (;;) {
      tw_u32 bits = (old & mask) >> shift;
      T o;
      if (sizeof(T) == 1) o = tw_bitcast<T>((tw_u8)bits);
      else if (sizeof(T) == 2) o = tw_bitcast<T>((tw_u16)bits);
      else o = tw_bitcast<T>(bits);
      T n = f(o);
      tw_u32 nb;
      if (sizeof(T) == 1) nb = tw_bitcast<tw_u8>(n);
      else if (sizeof(T) == 2) nb = tw_bitcast<tw_u16>(n);
      else nb = tw_bitcast<tw_u32>(n);
      tw_u32 neu = (old & ~mask) | ((nb << shift) & mask);
      tw_u32 prev = tw_atomic_cas32(w, old, neu);
      if (prev == old) { result = o; break; }
      old = prev;
    }
  }
  tw_fence();
  return result;
}

// A failed tw.assert_: the first failure records its number and block; the kernel then returns.
TW_DEV void tw_fail(int* status, int which) {
  if (tw_atomic_cas32((tw_u32*)status, 0u, (tw_u32)which) == 0u) {
    status[1] = (int)blockIdx.x;
    status[2] = (int)blockIdx.y;
    status[3] = (int)blockIdx.z;
    tw_fence();
  }
}

// ---- printf on a GPU (the emulator hands values back to Python instead: tw_print in emulator.h) --

#ifndef TW_EMULATOR
template <class... A>
TW_DEV void tw_printf(const char* fmt, A... args) { printf(fmt, args...); }
TW_DEV void tw_print_elem(bool x) { printf(x ? "True" : "False"); }
TW_DEV void tw_print_elem(tw_i8 x) { printf("%d", (int)x); }
TW_DEV void tw_print_elem(tw_i16 x) { printf("%d", (int)x); }
TW_DEV void tw_print_elem(tw_i32 x) { printf("%d", x); }
TW_DEV void tw_print_elem(tw_i64 x) { printf("%lld", x); }
TW_DEV void tw_print_elem(tw_u8 x) { printf("%u", (unsigned)x); }
TW_DEV void tw_print_elem(tw_u16 x) { printf("%u", (unsigned)x); }
TW_DEV void tw_print_elem(tw_u32 x) { printf("%u", x); }
TW_DEV void tw_print_elem(tw_u64 x) { printf("%llu", x); }
TW_DEV void tw_print_elem(float x) { printf("%g", (double)x); }
TW_DEV void tw_print_elem(double x) { printf("%g", x); }
TW_DEV void tw_print_elem(tw_f16 x) { printf("%g", (double)tw_widen(x)); }
TW_DEV void tw_print_elem(tw_bf16 x) { printf("%g", (double)tw_widen(x)); }
TW_DEV void tw_print_elem(tw_f8e4m3 x) { printf("%g", (double)tw_widen(x)); }
TW_DEV void tw_print_elem(tw_f8e5m2 x) { printf("%g", (double)tw_widen(x)); }
// A tile as NumPy nests it: "[[1, 2],\n [3, 4]]" (without NumPy's column alignment or summarising).
template <class T>
TW_DEV void tw_print_tile(const T* p, int nd, const int* shape) {
  int n = 1;
  for (int k = 0; k < nd; ++k) n *= shape[k];
  for (int i = 0; i < n; ++i) {
    int open = 0, inner = 1;
    for (int k = nd - 1; k >= 0; --k) {
      inner *= shape[k];
      if (i % inner != 0) break;
      ++open;
    }
    if (i == 0) {
      for (int k = 0; k < nd; ++k) printf("[");
    } else if (open == 0) {
      printf(", ");
    } else {
      for (int k = 0; k < open; ++k) printf("]");
      printf(",");
      for (int k = 0; k < open; ++k) printf("\n");
      for (int k = 0; k < nd - open; ++k) printf(" ");
      for (int k = 0; k < open; ++k) printf("[");
    }
    tw_print_elem(p[i]);
  }
  for (int k = 0; k < nd; ++k) printf("]");
}
#endif
