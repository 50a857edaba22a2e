#include "io/npy_file.h"

#include "core/error.h"
#include "io/atomic_file.h"

namespace kiln::io {

void write_npy(const std::string& path, const Tensor& t) {
  const char* descr = nullptr;
  switch (t.dtype()) {
    case DType::f32: descr = "<f4"; break;
    case DType::f64: descr = "<f8"; break;
    case DType::i32: descr = "<i4"; break;
    case DType::i64: descr = "<i8"; break;
    case DType::u8: descr = "|u1"; break;
    default: fail("write_npy: ", dtype_name(t.dtype()), " has no .npy type");
  }
  std::string shape = "(";
  for (int i = 0; i < t.shape().rank(); ++i) shape += std::to_string(t.dim(i)) + (t.shape().rank() == 1 ? "," : i + 1 < t.shape().rank() ? ", " : "");
  shape += ")";
  std::string header = str_cat("{'descr': '", descr, "', 'fortran_order': False, 'shape': ", shape, ", }");
  // Magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64, '\n'.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(static_cast<const char*>(t.raw()), t.bytes());
  write_file_atomic(path, out);
}

}  // namespace kiln::io
