#pragma once
// Whether work on a stream may run as captured graphs (docs/cuda.md, "Graphs"): the one rule the
// trainer and the serving ModelRunner both ask, each adding only what its own use needs (the
// trainer: one rank, no clipping; serving: one dense input).
#include "core/stream.h"

namespace kiln::models {

// `embedding_backward`: the captured work includes an embedding's backward pass.
bool graphs_capturable(const Stream& s, bool embedding_backward);

}  // namespace kiln::models
