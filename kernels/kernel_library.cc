#include "kernels/kernel_library.h"

#include <array>
#include <atomic>
#include <string>

#include "core/error.h"

namespace kiln::kernels {

namespace {

constexpr std::array<std::string_view, 10> kFamilies = {"activation", "batch_norm", "conv2d", "dropout", "embedding",
                                                        "gemm",       "loss",       "optimizer", "pooling", "reduce"};
// Per family: 0 for no override, else 1 + the KernelLibrary it was set to.
std::atomic<uint8_t> g_default{static_cast<uint8_t>(KernelLibrary::kiln)};
std::array<std::atomic<uint8_t>, kFamilies.size()> g_override{};

size_t family_index(std::string_view op) {
  for (size_t i = 0; i < kFamilies.size(); ++i)
    if (kFamilies[i] == op) return i;
  std::string names;
  for (std::string_view f : kFamilies) {
    if (!names.empty()) names += ", ";
    names += f;
  }
  fail("unknown kernel op family '", op, "': the families are ", names);
}

}  // namespace

const char* kernel_library_name(KernelLibrary library) {
  return library == KernelLibrary::vendor ? "vendor" : "kiln";
}

std::span<const std::string_view> kernel_op_families() { return kFamilies; }

KernelLibrary kernel_library(std::string_view op) {
  const uint8_t o = g_override[family_index(op)].load(std::memory_order_relaxed);
  return static_cast<KernelLibrary>(o == 0 ? g_default.load(std::memory_order_relaxed) : o - 1);
}

void set_kernel_library(KernelLibrary library) { g_default.store(static_cast<uint8_t>(library)); }

void set_kernel_library(std::string_view op, KernelLibrary library) {
  g_override[family_index(op)].store(static_cast<uint8_t>(1 + static_cast<uint8_t>(library)));
}

void reset_kernel_library() {
  g_default.store(static_cast<uint8_t>(KernelLibrary::kiln));
  for (auto& v : g_override) v.store(0);
}

}  // namespace kiln::kernels
