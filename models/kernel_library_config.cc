#include "models/kernel_library_config.h"

#include <set>
#include <utility>

#include "core/error.h"
#include "kernels/kernel_library.h"

namespace kiln::models {

namespace {

kernels::KernelLibrary to_library(KernelChoice::Library library) {
  return library == KernelChoice::VENDOR ? kernels::KernelLibrary::vendor : kernels::KernelLibrary::kiln;
}

}  // namespace

std::vector<std::string> apply_kernel_library(
    KernelChoice::Library library, const google::protobuf::RepeatedPtrField<KernelChoice>& overrides) {
  std::vector<std::pair<std::string, kernels::KernelLibrary>> chosen;
  std::vector<std::string> warnings;
  std::set<std::string> seen;
  for (int i = 0; i < overrides.size(); ++i) {
    const std::string field = "kernel_library_overrides[" + std::to_string(i) + "]";
    const KernelChoice& c = overrides[i];
    if (c.op().empty()) fail(field, ".op: missing; name an op family (e.g. op: \"gemm\")");
    bool vendor_kernels = false;
    try {
      vendor_kernels = kernels::has_vendor_kernels(c.op());
    } catch (const Error& e) {
      fail(field, ".op: ", e.what());
    }
    if (!seen.insert(c.op()).second) fail(field, ".op: '", c.op(), "' is overridden twice");
    if (c.library() == KernelChoice::VENDOR && !vendor_kernels)
      warnings.push_back(field + ": '" + c.op() + "' has no vendor or reference kernels on CUDA; Kiln's kernel runs");
    chosen.emplace_back(c.op(), to_library(c.library()));
  }
  kernels::reset_kernel_library();
  kernels::set_kernel_library(to_library(library));
  for (const auto& [op, lib] : chosen) kernels::set_kernel_library(op, lib);
  return warnings;
}

}  // namespace kiln::models
