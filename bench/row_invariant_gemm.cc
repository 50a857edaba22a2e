// The row-invariant inference GEMM (kernels/cpu/gemm_row_invariant.cc) with its AVX2 tiles and,
// where the CPU has AVX-512, its AVX-512 tiles, one thread, on the serving shapes of the example
// models at batch 1, 16 and 64: GFLOP/s of each and the ratio (the two give the same bits).
//
//   kiln_bench_row_invariant_gemm [--min-seconds 0.2]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/philox.h"
#include "kernels/cpu/gemm.h"

namespace {

double gflops(bool avx512, int64_t m, int64_t n, int64_t k, const std::vector<float>& a, const std::vector<float>& b,
              std::vector<float>& c, double min_seconds) {
  using Clock = std::chrono::steady_clock;
  int64_t reps = 0;
  const auto start = Clock::now();
  double seconds = 0;
  while (seconds < min_seconds) {
    kiln::kernels::cpu::sgemm_row_invariant_isa(avx512, m, n, k, a.data(), k, b.data(), n, c.data(), n);
    ++reps;
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
  }
  return 2.0 * static_cast<double>(m * n * k) * static_cast<double>(reps) / seconds / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  double min_seconds = 0.2;
  for (int i = 1; i + 1 < argc; i += 2)
    if (!std::strcmp(argv[i], "--min-seconds")) min_seconds = std::atof(argv[i + 1]);
  const bool avx512 = kiln::kernels::cpu::row_invariant_avx512_available();
  struct Layer {
    const char* name;
    int64_t n, k;
  };
  const Layer layers[] = {{"flights h1 (39 -> 64)", 64, 39},  {"flights h2 (64 -> 32)", 32, 64},
                          {"mlp fc1 (784 -> 256)", 256, 784}, {"cnn fc1 (3136 -> 256)", 256, 3136},
                          {"cnn logits (256 -> 10)", 10, 256}};
  std::printf("row-invariant GEMM, one thread; AVX-512 %s\n", avx512 ? "available" : "not available on this CPU");
  std::printf("%-24s %6s %12s %12s %8s\n", "layer", "batch", "AVX2 GF/s", "AVX-512 GF/s", "ratio");
  kiln::PhiloxGenerator gen(1, 0);
  for (const Layer& l : layers)
    for (int64_t m : {1, 16, 64}) {
      std::vector<float> a(static_cast<size_t>(m * l.k)), b(static_cast<size_t>(l.k * l.n)), c(static_cast<size_t>(m * l.n));
      for (float& x : a) x = gen.uniform() - 0.5f;
      for (float& x : b) x = gen.uniform() - 0.5f;
      const double g2 = gflops(false, m, l.n, l.k, a, b, c, min_seconds);
      if (!avx512) {
        std::printf("%-24s %6lld %12.2f %12s %8s\n", l.name, static_cast<long long>(m), g2, "-", "-");
        continue;
      }
      const double g5 = gflops(true, m, l.n, l.k, a, b, c, min_seconds);
      std::printf("%-24s %6lld %12.2f %12.2f %7.2fx\n", l.name, static_cast<long long>(m), g2, g5, g5 / g2);
    }
  return 0;
}
