// GEMM throughput of kiln::kernels::gemm<float> (oneDNN sgemm) on the current OpenMP thread count,
// as GFLOP/s and as a fraction of this machine's fp32 peak, for square sizes and the shapes the
// Fashion-MNIST models run. When OpenBLAS can be loaded at run time it is timed on the same shapes
// (Debian's build may pick a generic SSE3 kernel on CPUs it does not recognise).
//
//   kiln_bench_gemm [--peak-gflops X] [--json FILE] [--openblas LIB] [--min-seconds S]
//
// The peak is measured (bench/fma_peak.h) unless --peak-gflops gives it.
#include "kernels/gemm.h"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/fma_peak.h"
#include "core/philox.h"
#include "core/stream.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Shape {
  std::string name;
  int64_t m, n, k;
};

// Row-major, no transposes, C = A B (same signature as OpenBLAS's cblas_sgemm; the enums are ints).
using CblasSgemm = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                            int lda, const float* b, int ldb, float beta, float* c, int ldc);
constexpr int kCblasRowMajor = 101, kCblasNoTrans = 111;

struct OpenBlas {
  CblasSgemm sgemm = nullptr;
  std::string corename;
};

OpenBlas load_openblas(const std::string& explicit_path, int threads) {
  OpenBlas ob;
  std::vector<std::string> candidates;
  if (!explicit_path.empty()) {
    candidates.push_back(explicit_path);
  } else {
    // The soname, then Debian's per-variant directories (used when the alternative is not set).
    candidates = {"libopenblas.so.0", "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
                  "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0"};
  }
  for (const auto& path : candidates) {
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) continue;
    ob.sgemm = reinterpret_cast<CblasSgemm>(dlsym(lib, "cblas_sgemm"));
    if (!ob.sgemm) continue;
    if (auto set_threads = reinterpret_cast<void (*)(int)>(dlsym(lib, "openblas_set_num_threads")))
      set_threads(threads);
    if (auto core = reinterpret_cast<const char* (*)()>(dlsym(lib, "openblas_get_corename"))) ob.corename = core();
    break;
  }
  return ob;
}

std::vector<float> random_matrix(int64_t n, uint64_t seed) {
  kiln::PhiloxGenerator gen(seed, 0);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = gen.uniform() * 2.0f - 1.0f;
  return v;
}

// Median seconds per call of fn, after a warm-up, over at least 3 calls and min_seconds.
template <typename Fn>
double time_call(Fn fn, double min_seconds) {
  fn();
  std::vector<double> times;
  const auto start = Clock::now();
  while (times.size() < 3 || std::chrono::duration<double>(Clock::now() - start).count() < min_seconds) {
    const auto t0 = Clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    if (times.size() >= 1000) break;
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// The largest "cpu MHz" in /proc/cpuinfo, in GHz; 0 when unreadable.
double cpu_ghz() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  double mhz = 0.0;
  while (std::getline(in, line)) {
    if (line.rfind("cpu MHz", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon != std::string::npos) mhz = std::max(mhz, std::atof(line.c_str() + colon + 1));
  }
  return mhz / 1000.0;
}

// Max relative error of kiln's C = A B against a double-precision triple loop.
double check_against_reference(int64_t n) {
  const auto a = random_matrix(n * n, 1), b = random_matrix(n * n, 2);
  std::vector<float> c(static_cast<size_t>(n * n), std::nanf(""));
  kiln::kernels::gemm<float>(kiln::Stream::cpu(), false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(),
                             n);
  double worst = 0.0;
  std::vector<double> row(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    std::fill(row.begin(), row.end(), 0.0);
    for (int64_t p = 0; p < n; ++p)
      for (int64_t j = 0; j < n; ++j) row[j] += static_cast<double>(a[i * n + p]) * b[p * n + j];
    for (int64_t j = 0; j < n; ++j) {
      const double e = std::abs(c[i * n + j] - row[j]) / (std::abs(row[j]) + 1.0);
      worst = std::isnan(e) ? INFINITY : std::max(worst, e);
    }
  }
  return worst;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

struct Result {
  Shape shape;
  double kiln_gflops = 0, fraction = 0, openblas_gflops = 0;
};

}  // namespace

int main(int argc, char** argv) {
  double peak_gflops = 0.0, min_seconds = 0.5;
  std::string json_path, openblas_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--peak-gflops") {
      peak_gflops = std::atof(value().c_str());
    } else if (arg == "--json") {
      json_path = value();
    } else if (arg == "--openblas") {
      openblas_path = value();
    } else if (arg == "--min-seconds") {
      min_seconds = std::atof(value().c_str());
    } else {
      std::fprintf(stderr, "usage: %s [--peak-gflops X] [--json FILE] [--openblas LIB] [--min-seconds S]\n", argv[0]);
      return 2;
    }
  }

  const int threads = kiln::cpu_threads();
  const std::string isa = kiln::kernels::cpu_gemm_isa();
  const int cores = std::min<int>(threads, std::max(1u, std::thread::hardware_concurrency()));
  const double ghz = cpu_ghz();
  std::string peak_source = "given";
  if (peak_gflops <= 0.0) {
    // Measured: a register-resident FMA loop on as many threads (bench/fma_peak.h).
    const kiln::bench::FmaPeak measured = kiln::bench::measured_fp32_peak(cores);
    peak_gflops = measured.gflops;
    peak_source = "measured " + measured.isa + " FMA loop";
  }
  const OpenBlas openblas = load_openblas(openblas_path, threads);

  std::printf("kiln gemm<float> (oneDNN sgemm)  isa=%s  threads=%d\n", isa.c_str(), threads);
  std::printf("fp32 peak %.1f GFLOP/s (%s, %d threads; %.1f flops/cycle/core at the nominal %.3f GHz)\n",
              peak_gflops, peak_source.c_str(), cores, peak_gflops / cores / ghz, ghz);
  if (openblas.sgemm)
    std::printf("OpenBLAS loaded, core %s\n", openblas.corename.empty() ? "?" : openblas.corename.c_str());

  const double check_error = check_against_reference(256);
  std::printf("check 256x256x256 vs double reference: max rel error %.2e %s\n\n", check_error,
              check_error < 1e-4 ? "ok" : "FAILED");

  const std::vector<Shape> shapes = {
      {"square 256", 256, 256, 256},          {"square 512", 512, 512, 512},
      {"square 1024", 1024, 1024, 1024},      {"square 2048", 2048, 2048, 2048},
      {"dense 784->256", 128, 256, 784},      {"dense 256->256", 128, 256, 256},
      {"dense 256->10", 128, 10, 256},        {"conv2 im2col", 128 * 14 * 14, 64, 288},
      {"conv1 im2col", 128 * 28 * 28, 32, 9},
  };
  std::printf("%-16s %7s %6s %6s %10s %8s", "shape", "M", "N", "K", "GFLOP/s", "of peak");
  if (openblas.sgemm) std::printf(" %12s %12s", "OpenBLAS", "kiln/OpenBLAS");
  std::printf("\n");

  // All kiln timings first, then all OpenBLAS ones: interleaving them would let one library's
  // idle worker threads (both spin for a while after a call) steal cycles from the other.
  std::vector<Result> results;
  for (const Shape& s : shapes) {
    const auto a = random_matrix(s.m * s.k, 3), b = random_matrix(s.k * s.n, 4);
    std::vector<float> c(static_cast<size_t>(s.m * s.n));
    Result r{s};
    const double t = time_call(
        [&] {
          kiln::kernels::gemm<float>(kiln::Stream::cpu(), false, false, s.m, s.n, s.k, 1.0f, a.data(), s.k, b.data(),
                                     s.n, 0.0f, c.data(), s.n);
        },
        min_seconds);
    r.kiln_gflops = 2.0 * static_cast<double>(s.m) * s.n * s.k / t * 1e-9;
    r.fraction = r.kiln_gflops / peak_gflops;
    results.push_back(r);
  }
  if (openblas.sgemm) {
    for (Result& r : results) {
      const Shape& s = r.shape;
      const auto a = random_matrix(s.m * s.k, 3), b = random_matrix(s.k * s.n, 4);
      std::vector<float> c(static_cast<size_t>(s.m * s.n));
      const double t = time_call(
          [&] {
            openblas.sgemm(kCblasRowMajor, kCblasNoTrans, kCblasNoTrans, static_cast<int>(s.m), static_cast<int>(s.n),
                           static_cast<int>(s.k), 1.0f, a.data(), static_cast<int>(s.k), b.data(),
                           static_cast<int>(s.n), 0.0f, c.data(), static_cast<int>(s.n));
          },
          min_seconds);
      r.openblas_gflops = 2.0 * static_cast<double>(s.m) * s.n * s.k / t * 1e-9;
    }
  }
  for (const Result& r : results) {
    std::printf("%-16s %7lld %6lld %6lld %10.1f %7.1f%%", r.shape.name.c_str(), static_cast<long long>(r.shape.m),
                static_cast<long long>(r.shape.n), static_cast<long long>(r.shape.k), r.kiln_gflops,
                100.0 * r.fraction);
    if (openblas.sgemm) std::printf(" %12.1f %12.2fx", r.openblas_gflops, r.kiln_gflops / r.openblas_gflops);
    std::printf("\n");
  }

  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << "{\n  \"benchmark\": \"gemm\",\n  \"isa\": \"" << json_escape(isa) << "\",\n  \"threads\": " << threads
        << ",\n  \"peak_gflops\": " << peak_gflops << ",\n  \"peak_source\": \"" << peak_source
        << "\",\n  \"cpu_ghz\": " << ghz << ",\n  \"check_256_max_rel_error\": " << check_error
        << ",\n  \"openblas\": ";
    if (openblas.sgemm) {
      out << '"' << json_escape(openblas.corename) << '"';
    } else {
      out << "null";
    }
    out << ",\n  \"results\": [\n";
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      out << "    {\"shape\": \"" << json_escape(r.shape.name) << "\", \"m\": " << r.shape.m << ", \"n\": " << r.shape.n
          << ", \"k\": " << r.shape.k << ", \"gflops\": " << r.kiln_gflops << ", \"fraction_of_peak\": " << r.fraction;
      if (openblas.sgemm)
        out << ", \"openblas_gflops\": " << r.openblas_gflops
            << ", \"ratio_vs_openblas\": " << r.kiln_gflops / r.openblas_gflops;
      out << "}" << (i + 1 < results.size() ? "," : "") << "\n";
    }
    out << "  ]\n}\n";
    if (!out) {
      std::fprintf(stderr, "could not write %s\n", json_path.c_str());
      return 1;
    }
  }
  return check_error < 1e-4 ? 0 : 1;
}
