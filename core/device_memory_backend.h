#pragma once
// The CUDA side of core/device_memory.cc (core/cuda/device_memory.cu; core/no_cuda.cc throws in a
// build without CUDA). Plain pointers, so that core/device_memory.cc needs no CUDA headers.
#include <cstddef>

namespace kiln {
class Allocator;
}

namespace kiln::cuda_memory {

// cudaSetDevice on the calling thread (core/current_device.h).
void set_current_device(int device);
void* stream_create(int device);  // a blocking cudaStream_t
void stream_destroy(void* stream);
void* event_create(int device);   // without timing
void event_destroy(void* event);
void event_record(void* event, void* stream);
void event_make_wait(void* event, void* stream);
void event_synchronize(void* event);
// cudaMemcpyDefault: unified addressing tells host from device pointers.
void copy_async(void* dst, const void* src, size_t bytes, void* stream);
void copy_rows_async(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows,
                     void* stream);
void memset_async(void* dst, int value, size_t bytes, void* stream);
// Graphs: stream capture (thread-local mode), instantiation into a cudaGraphExec_t, launch, destroy.
// The capture's allocations on `stream` come from a pool of the device's caching allocator that
// the graph owns until graph_destroy (core/cuda/caching_allocator.h, begin_capture).
void graph_begin_capture(int device, void* stream);
void* graph_end_capture(int device, void* stream);  // the graph: its exec and its pool
void graph_launch(void* graph, void* stream);
void graph_destroy(void* graph);
// Page-locked host memory (cudaHostAlloc); its device() is the CPU.
Allocator& pinned_allocator();

}  // namespace kiln::cuda_memory
