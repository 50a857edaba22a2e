#pragma once
// A single-file container of named tensors plus an opaque metadata string (the caller's own
// serialized state: step, config, optimizer hyper-parameters...).
//
// Layout, all integers little-endian:
//   0   "KILNCKPT"
//   8   u32 version (1)
//   12  u32 crc32c of header bytes [16, header_size)
//   16  u64 header_size
//   24  u64 file_size
//   32  u64 metadata_size
//   40  u64 tensor_count
//   48  metadata bytes
//       per tensor: u32 name_size, name, u8 dtype code, u8 rank, u16 zero, i64 dims[rank],
//                   u64 data offset, u64 data size, u32 crc32c of the data
//   ... zero padding; each tensor's raw data starts at a multiple of 64 bytes (mmap-friendly).
#include <string>
#include <vector>

#include "core/tensor.h"

namespace kiln::io {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

// Writes atomically (temporary file, fsync, rename): `path` holds either its previous contents
// or the complete new checkpoint. Tensors must be CPU tensors with distinct, non-empty names.
void write_checkpoint_file(const std::string& path, const std::string& metadata,
                           const std::vector<NamedTensor>& tensors);

struct CheckpointFile {
  std::string metadata;
  std::vector<NamedTensor> tensors;  // in the order they were written
  // The tensor called `name`, or nullptr.
  const Tensor* find(const std::string& name) const;
};

// Validates magic, version, sizes and every checksum; kiln::Error naming the file otherwise
// ("checkpoint X is truncated", "checksum mismatch in tensor T of X", ...).
CheckpointFile read_checkpoint_file(const std::string& path);

}  // namespace kiln::io
