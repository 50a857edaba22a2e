// The measured fp32 FMA peak (bench/fma_peak.h) of each ISA level this CPU runs, on 1 thread and
// on --threads threads; the last line is JSON for the benchmark scripts:
// {"threads": T, "isa": "...", "gflops": X, "per_isa": {...}}.
//
//   kiln_bench_fma_peak [--threads N]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "bench/fma_peak.h"

int main(int argc, char** argv) {
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 1; i + 1 < argc; i += 2)
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
  std::string per_isa;
  kiln::bench::FmaPeak best;
  for (const char* isa : {"avx2", "avx512"}) {
    if (!std::strcmp(isa, "avx512") && !__builtin_cpu_supports("avx512f")) continue;
    const kiln::bench::FmaPeak one = kiln::bench::measure_fma_peak(isa, 1);
    const kiln::bench::FmaPeak all = kiln::bench::measure_fma_peak(isa, threads);
    std::printf("%-7s 1 thread %8.1f GFLOP/s   %d threads %8.1f GFLOP/s\n", isa, one.gflops, threads, all.gflops);
    per_isa += std::string(per_isa.empty() ? "" : ", ") + "\"" + isa + "\": " + std::to_string(all.gflops);
    if (all.gflops > best.gflops) best = all;
  }
  std::printf("{\"threads\": %d, \"isa\": \"%s\", \"gflops\": %.2f, \"per_isa\": {%s}}\n", threads, best.isa.c_str(),
              best.gflops, per_isa.c_str());
  return 0;
}
