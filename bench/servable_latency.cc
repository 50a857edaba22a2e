// An exported image servable (e.g. the Fashion-MNIST CNN) run in-process through the server's
// ModelRunner, as `kiln serve` runs a batch: median and p99 microseconds per call at batch 1 and
// examples/s at a larger batch. No Python in the way, so perf sees Kiln's own symbols.
//
//   kiln_bench_servable_latency VERSION_DIR [--batch 64] [--calls 2000] [--batched-calls N] [--threads 2]
// --batched-calls sets the batch calls alone (default calls / 20, at least 50), e.g. for perf.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/philox.h"
#include "core/stream.h"
#include "runtime/servable.h"

namespace {

std::vector<double> time_calls(kiln::runtime::ModelRunner& runner, const kiln::transform::ModelInputs& in, int calls) {
  using Clock = std::chrono::steady_clock;
  std::vector<double> us;
  for (int i = 0; i < calls; ++i) {
    const auto t0 = Clock::now();
    runner.run(in);
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s VERSION_DIR [--batch 64] [--calls 2000] [--batched-calls N] [--threads 2]\n",
                 argv[0]);
    return 2;
  }
  int batch = 64, calls = 2000, threads = 2, batched_calls = -1;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--batch")) batch = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--calls")) calls = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--batched-calls")) batched_calls = std::atoi(argv[i + 1]);
  }
  kiln::set_cpu_threads(threads);
  auto servable = kiln::runtime::Servable::load(argv[1]);
  kiln::runtime::ModelRunner runner(*servable);
  const int64_t width = servable->tensor_elements();
  kiln::PhiloxGenerator gen(1, 0);
  std::vector<float> pixels(static_cast<size_t>(batch * width));
  for (float& p : pixels) p = static_cast<float>(static_cast<int>(gen.uniform() * 255.0f));
  const std::vector<float> first(pixels.begin(), pixels.begin() + width);
  const auto one = servable->prepare_tensor(first, 1);
  const auto many = servable->prepare_tensor(pixels, batch);
  time_calls(runner, many, 20);  // warm-up: buffers reach their final size
  const auto b1 = time_calls(runner, one, calls);
  const auto bn = time_calls(runner, many, batched_calls > 0 ? batched_calls : std::max(50, calls / 20));
  std::printf("batch 1: p50 %.1f us, p99 %.1f us; batch %d: %.0f examples/s\n", b1[b1.size() / 2],
              b1[b1.size() * 99 / 100], batch, batch / (bn[bn.size() / 2] * 1e-6));
  return 0;
}
