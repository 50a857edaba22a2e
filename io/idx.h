#pragma once
// IDX files (the MNIST / Fashion-MNIST format), gzipped or plain: a big-endian header
// {0, 0, type code, rank, dims[rank] as uint32} followed by the row-major data.
#include <string>

#include "core/tensor.h"

namespace kiln::io {

// A u8 CPU tensor with the file's dims. Only type code 0x08 (unsigned byte) is supported.
// kiln::Error, naming the file, for a missing file, a bad header, truncated data or trailing bytes.
Tensor read_idx(const std::string& path);

struct ImageDataset {
  Tensor images;  // u8 [n, h, w, c] (c = 1 for a rank-3 IDX file)
  Tensor labels;  // i32 [n]
};

// Images (rank 3 [n, h, w] or rank 4 [n, h, w, c]) and labels (rank 1 [n]) with equal n.
ImageDataset read_idx_dataset(const std::string& images_path, const std::string& labels_path);

}  // namespace kiln::io
