#pragma once
// Which kernels an op family runs on a CUDA stream: Kiln's own (the default) or VENDOR: the
// vendor libraries (cuBLASLt GEMM, cuDNN convolution, pooling and batch norm) and, for the
// row-invariant GEMM and convolution, reduce, softmax cross-entropy, Adam and embedding, plain
// reference kernels (kernels/cuda/reference.h; the ops left, activation, dropout, SGD and the
// like, have one kernel, in that form already), chosen for the whole process and per op family,
// so a misbehaving custom kernel can be switched off from the config without a rebuild
// (docs/cuda.md, "Kernel libraries"). Every family has something behind VENDOR.
//
// Only the CUDA case of each kernels/<op>.cc reads the choice. On the CPU the vendor library,
// oneDNN, is already what runs, and the sim device runs the CPU code, so both ignore it: the
// results there are the same bits whatever is chosen.
//
// Set it once at start-up, before any op runs (cli/ does so right after choosing the device);
// reads are lock-free and may come from any thread.
#include <cstdint>
#include <span>
#include <string_view>

namespace kiln::kernels {

enum class KernelLibrary : uint8_t { kiln, vendor };

// "kiln" or "vendor".
const char* kernel_library_name(KernelLibrary library);

// The op families, one per kernels/<op>.h: activation, batch_norm, conv2d, dropout, embedding,
// gemm, loss, optimizer, pooling, reduce.
std::span<const std::string_view> kernel_op_families();

// The library for op family `op`: its override if it has one, else the process-wide default.
// kiln::Error for a name that is not a family, listing the families.
KernelLibrary kernel_library(std::string_view op);

// kernel_library(op) is VENDOR: what each kernels/<op>.cc CUDA case asks.
inline bool use_vendor(std::string_view op) { return kernel_library(op) == KernelLibrary::vendor; }

// The process-wide default; clears no override.
void set_kernel_library(KernelLibrary library);
// An override for one op family (kiln::Error for an unknown name, listing the families).
void set_kernel_library(std::string_view op, KernelLibrary library);
// Back to Kiln's kernels everywhere, no overrides (tests).
void reset_kernel_library();

}  // namespace kiln::kernels
