#pragma once
// Embedding lookup for single- and multi-valued categorical columns. Example b owns ids
// [offsets[b], offsets[b+1]) (CSR layout, offsets has batch+1 entries); an example with no ids
// gets a zero vector.
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels {

enum class Combiner : uint8_t { sum, mean };

// out[b, :] = combine(table[ids[j], :] for j in example b). Ids outside [0, rows) are a user
// error (kiln::Error naming the id). ids_checked: the caller has checked every id on the host
// (embedding_check_ids), so the CUDA path skips its device check, which reads offsets[batch] and
// the verdict back (two synchronizations): the lookup is then capturable in a graph.
template <typename T>
void embedding_forward(const Stream& s, const T* table, int64_t rows, int64_t dim, const int64_t* ids,
                       const int64_t* offsets, int64_t batch, Combiner combiner, T* out, bool ids_checked = false);

// The forward's check of host ids: kiln::Error "embedding: id X (position J) is outside the
// table's R rows" for the first id outside [0, rows). The trainer checks a batch before staging
// it, where the host has the ids.
void embedding_check_ids(const int64_t* ids, int64_t nnz, int64_t rows);

// Row-sparse gradient of the table [rows, dim]: unique ids in ascending order and, for each, the
// summed gradient rows. Deterministic (no float atomics; sums in id-then-position order). Ids
// outside [0, rows) are a user error, as in the forward. unique_ids must hold
// nnz = offsets[batch] entries and grad_rows nnz * dim; returns the count of unique ids (on a
// device stream this synchronizes the stream to read it).
template <typename T>
int64_t embedding_backward(const Stream& s, const T* dout, int64_t rows, int64_t dim, const int64_t* ids,
                           const int64_t* offsets, int64_t batch, Combiner combiner, int64_t* unique_ids, T* grad_rows);
// The same without a host round trip, for a captured training step whose id count varies from
// batch to batch: ids, unique_ids and grad_rows hold up to `capacity` ids (offsets[batch] <=
// capacity, read where the op runs), the unique count goes to *count (device memory on a device
// stream, host memory on the CPU) and `workspace` holds embedding_backward_workspace_bytes(s,
// rows, capacity) bytes of device memory. Nothing synchronizes or allocates; CUDA's launches are
// sized for the capacity. The ids must have been checked (embedding_check_ids): the CUDA kernel
// cannot report an error, and leaves a bad id out of the gradient. No CUDA reference kernel
// (kernel_library VENDOR): that backward allocates and synchronizes.
template <typename T>
void embedding_backward_async(const Stream& s, const T* dout, int64_t rows, int64_t dim, const int64_t* ids,
                              const int64_t* offsets, int64_t batch, int64_t capacity, Combiner combiner,
                              int64_t* unique_ids, T* grad_rows, int64_t* count, void* workspace);
// Bytes of device scratch embedding_backward_async needs for up to `capacity` ids of a table of
// `rows` rows: the sort's keys and positions and CUB's temporary storage on CUDA, 0 on the CPU
// and sim. Computed on the host, touching no stream, so the caller allocates it before a capture.
int64_t embedding_backward_workspace_bytes(const Stream& s, int64_t rows, int64_t capacity);

}  // namespace kiln::kernels
