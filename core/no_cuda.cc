// Stand-ins for the CUDA backend's entry points in a build without CUDA.
#include "core/allocator.h"
#include "core/device.h"
#include "core/device_choice.h"
#include "core/error.h"

namespace kiln {

int cuda_device_count() { return 0; }
std::string cuda_unavailable_reason() { return "this build of kiln has no CUDA backend"; }
Allocator* cuda_allocator(int) { return nullptr; }
void synchronize_cuda_stream(void*) { fail("this build of kiln has no CUDA backend"); }

}  // namespace kiln
