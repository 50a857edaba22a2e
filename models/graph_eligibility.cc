#include "models/graph_eligibility.h"

#include "core/device_graph.h"
#include "kernels/kernel_library.h"

namespace kiln::models {

bool graphs_capturable(const Stream& s, bool embedding_backward) {
  if (!DeviceGraph::supported(s)) return false;
  // CUDA's reference embedding backward (kernel_library VENDOR) calls Thrust, which allocates
  // with cudaMalloc outside the caching allocator and synchronizes: not capturable. Kernel
  // scratch (BF16 operand copies included) comes from the caching allocator, which serves a
  // capture from the graph's own pool, so it does not stop a capture.
  return !(embedding_backward && s.device().is_cuda() && kernels::use_vendor("embedding"));
}

}  // namespace kiln::models
