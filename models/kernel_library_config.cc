#include "models/kernel_library_config.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "kernels/kernel_library.h"

namespace kiln::models {

namespace {

kernels::KernelLibrary to_library(KernelChoice::Library library) {
  return library == KernelChoice::VENDOR ? kernels::KernelLibrary::vendor : kernels::KernelLibrary::kiln;
}

}  // namespace

void apply_kernel_library(KernelChoice::Library library,
                          const google::protobuf::RepeatedPtrField<KernelChoice>& overrides) {
  std::vector<std::pair<std::string, kernels::KernelLibrary>> chosen;
  std::set<std::string> seen;
  for (int i = 0; i < overrides.size(); ++i) {
    const std::string field = "kernel_library_overrides[" + std::to_string(i) + "]";
    const KernelChoice& c = overrides[i];
    if (c.op().empty()) fail(field, ".op: missing; name an op family (e.g. op: \"gemm\")");
    try {
      kernels::kernel_library(c.op());  // throws for a name that is not a family
    } catch (const Error& e) {
      fail(field, ".op: ", e.what());
    }
    if (!seen.insert(c.op()).second) fail(field, ".op: '", c.op(), "' is overridden twice");
    chosen.emplace_back(c.op(), to_library(c.library()));
  }
  kernels::reset_kernel_library();
  kernels::set_kernel_library(to_library(library));
  for (const auto& [op, lib] : chosen) kernels::set_kernel_library(op, lib);
}

}  // namespace kiln::models
