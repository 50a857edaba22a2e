#pragma once
// The machine's measured fp32 FMA peak: a register-resident loop of independent FMAs (no loads,
// no dependency stalls) per ISA level, on `threads` threads at once, best of a few runs. The CPU
// benchmarks report their GFLOP/s as a fraction of it instead of a table keyed by CPU flags (a
// Zen 4 core has AVX-512 but the FMA throughput of AVX2).
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace kiln::bench {

struct FmaPeak {
  std::string isa;  // "avx2" or "avx512"
  int threads = 1;
  double gflops = 0;
};

namespace detail {

constexpr int64_t kFmaIterations = 20'000'000;

// 12 independent 8-lane chains: enough to cover the FMA latency times the two FMA ports. The
// inner loops are unrolled so the chains live in registers: left as a loop, GCC 12 kept the
// AVX-512 accumulators in memory and the "peak" was a load/store bound (GEMMs measured 184% of it
// on a Zen 5 EPYC).
__attribute__((target("avx2,fma"), noinline)) inline float fma_loop_avx2(int64_t n, float seed) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(seed + static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t k = 0; k < n; ++k)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  return _mm256_cvtss_f32(s);
}

// 24 independent 16-lane chains.
__attribute__((target("avx512f"), noinline)) inline float fma_loop_avx512(int64_t n, float seed) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(seed + static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t k = 0; k < n; ++k)
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  alignas(64) float out[16];
  __m512 sum = acc[0];
  for (int i = 1; i < 24; ++i) sum = _mm512_add_ps(sum, acc[i]);
  _mm512_store_ps(out, sum);  // (GCC 12 warns on _mm512_reduce_add_ps)
  return out[0];
}

}  // namespace detail

// GFLOP/s of `threads` threads running the loop of `isa` together (best of `repeats`).
inline FmaPeak measure_fma_peak(const std::string& isa, int threads, int repeats = 3) {
  const bool wide = isa == "avx512";
  const double flops_per_iteration = wide ? 24.0 * 16 * 2 : 12.0 * 8 * 2;
  FmaPeak peak{isa, threads, 0};
  for (int r = 0; r < repeats; ++r) {
    std::atomic<float> sink{0};
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const float v = wide ? detail::fma_loop_avx512(detail::kFmaIterations, static_cast<float>(t))
                             : detail::fma_loop_avx2(detail::kFmaIterations, static_cast<float>(t));
        sink.store(v);
      });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    peak.gflops = std::max(peak.gflops, flops_per_iteration * detail::kFmaIterations * threads / s / 1e9);
  }
  return peak;
}

// The highest of the ISA levels this CPU runs.
inline FmaPeak measured_fp32_peak(int threads) {
  FmaPeak best = measure_fma_peak("avx2", threads);
  if (__builtin_cpu_supports("avx512f")) {
    const FmaPeak wide = measure_fma_peak("avx512", threads);
    if (wide.gflops > best.gflops) best = wide;
  }
  return best;
}

}  // namespace kiln::bench
