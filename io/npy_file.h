#pragma once
// NumPy .npy files (format 1.0): how `kiln transform` hands transformed inputs to other tools.
#include <string>

#include "core/tensor.h"

namespace kiln::io {

// Writes a CPU tensor (f32, f64, i32, i64, u8) atomically as a C-order .npy file.
void write_npy(const std::string& path, const Tensor& tensor);

}  // namespace kiln::io
