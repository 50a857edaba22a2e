#include "models/gradient_sync.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>

#include "core/error.h"
#include "core/stream.h"
#include "models/layers/layers.h"
#if KILN_HAVE_NCCL
#include "core/cuda/nccl_device_communicator.h"
#endif

namespace kiln::models {

namespace {
// Cores this process may run on (its CPU affinity: mpirun --bind-to, taskset, cgroups).
int available_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return static_cast<int>(std::thread::hardware_concurrency());
  return CPU_COUNT(&set);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::unique_ptr<DeviceCommunicator> device_communicator(Communicator& host, const Device& device) {
  if (device.is_sim()) return make_sim_communicator(host);
#if KILN_HAVE_NCCL
  if (device.is_cuda()) return cuda::make_nccl_device_communicator(host, device.index);
#endif
  fail("data-parallel training on ", device.to_string(), " needs NCCL, which this build of kiln lacks");
}
}  // namespace

GradientSync::GradientSync(Communicator& comm, ParamRegistry<float>& params, const DistributedConfig& config)
    : comm_(comm), params_(params), config_(config) {
  if (config.bucket_bytes() < 4) fail("distributed.bucket_bytes must be at least 4, got ", config.bucket_bytes());
  const int64_t n = params.dense_count();
  const int64_t per_bucket = config.bucket_bytes() / static_cast<int64_t>(sizeof(float));
  for (int64_t end = n; end > 0;) {
    int64_t begin = std::max<int64_t>(0, end - per_bucket);
    buckets_.push_back({begin, end});
    end = begin;
  }
  stats_.buckets_per_step = static_cast<int64_t>(buckets_.size());
  stats_.dense_bytes_per_step = static_cast<double>(n) * sizeof(float);
  // The bottom bucket becomes final only when backward ends; the main thread reduces it itself
  // (no hand-off), the communication thread the ones above it. One bucket: no thread at all.
  // A communication thread only helps with a core to run on: on a rank pinned to as many cores
  // as it computes with, its all-reduce (MPI polls while it waits) takes time from backward
  // instead of hiding behind it (bench/results/scale.md: CNN efficiency 0.75 vs 0.88).
  const Device device = params.stream().device();
  if (!device.is_cpu()) {
    on_device_ = true;
    device_comm_ = device_communicator(comm, device);
    comm_stream_ = std::make_unique<DeviceStream>(device);
    ready_ = std::make_unique<DeviceEvent>(device);
    reduced_ = std::make_unique<DeviceEvent>(device);
    host_sparse_.resize(static_cast<size_t>(params.size()));
  }
  bool spare_core = available_cores() > cpu_threads();
  bool threaded = !on_device_ && config.overlap() && spare_core && comm.size() > 1 && comm.any_thread_may_call() &&
                  buckets_.size() > 1;
  threaded_buckets_ = threaded ? buckets_.size() - 1 : 0;
  stats_.threaded_buckets = static_cast<int64_t>(threaded_buckets_);
  // On a device every bucket above the bottom one is queued while backward runs (with overlap).
  if (on_device_ && config.overlap()) stats_.threaded_buckets = static_cast<int64_t>(buckets_.size()) - 1;
  if (threaded) thread_ = std::thread([this] { comm_loop(); });
}

GradientSync::~GradientSync() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void GradientSync::begin_step() {
  std::lock_guard<std::mutex> lock(mutex_);
  final_from_ = params_.dense_count();
  next_bucket_ = 0;
  done_buckets_ = 0;
  device_next_ = 0;
  in_step_ = true;
}

void GradientSync::queue_device_buckets(int64_t offset) {
  const Stream& compute = params_.stream();
  const Stream& comm = comm_stream_->view();
  auto t0 = std::chrono::steady_clock::now();
  while (device_next_ < buckets_.size() && offset <= buckets_[device_next_].begin) {
    const Bucket& k = buckets_[device_next_++];
    ready_->record(compute);
    ready_->make_wait(comm);
    device_comm_->all_reduce_sum(comm, params_.dense_grads().data<float>() + k.begin, k.end - k.begin);
  }
  stats_.comm_seconds += seconds_since(t0);
}

void GradientSync::dense_final_from(int64_t offset) {
  if (on_device_) {
    if (config_.overlap()) queue_device_buckets(offset);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (offset >= final_from_) return;
    final_from_ = offset;
  }
  changed_.notify_all();
}

void GradientSync::reduce_bucket(size_t b) {
  const Bucket& k = buckets_[b];
  comm_.all_reduce_sum(params_.dense_grads().data<float>() + k.begin, k.end - k.begin);
}

void GradientSync::comm_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] {
      return stop_ || (in_step_ && next_bucket_ < threaded_buckets_ && final_from_ <= buckets_[next_bucket_].begin);
    });
    if (stop_) return;
    size_t b = next_bucket_++;
    lock.unlock();
    auto t0 = std::chrono::steady_clock::now();
    std::exception_ptr error;
    try {
      reduce_bucket(b);
    } catch (...) {
      error = std::current_exception();
    }
    double secs = seconds_since(t0);
    lock.lock();
    stats_.comm_seconds += secs;
    if (error) {
      error_ = error;
      next_bucket_ = threaded_buckets_;  // nothing more this step; finish_step rethrows
      done_buckets_ = threaded_buckets_;
    } else {
      ++done_buckets_;
    }
    changed_.notify_all();
  }
}

void GradientSync::finish_step() {
  auto t0 = std::chrono::steady_clock::now();
  if (on_device_) {
    queue_device_buckets(0);
    reduced_->record(comm_stream_->view());
    reduced_->make_wait(params_.stream());
    stats_.exposed_seconds += seconds_since(t0);
    // The exchange below works on host copies of the sparse gradients and the state.
    auto t1 = std::chrono::steady_clock::now();
    const Stream& s = params_.stream();
    for (int h : params_.embedding_handles()) {
      const SparseGrad<float>& g = params_.sparse_grad(h);
      const int64_t dim = params_.info(h).shape[1];
      SparseGrad<float>& m = host_sparse_[static_cast<size_t>(h)];
      m.count = g.count;
      if (g.count) {
        m.unique_ids = to_host(s, g.unique_ids.view(0, Shape{g.count}));
        m.rows = to_host(s, g.rows.view(0, Shape{g.count, dim}));
      }
    }
    host_state_ = to_host(s, params_.state_values());
    exchange_sparse_and_state();
    for (int h : params_.embedding_handles()) {
      SparseGrad<float>& g = params_.sparse_grad(h);
      const SparseGrad<float>& m = host_sparse_[static_cast<size_t>(h)];
      const int64_t dim = params_.info(h).shape[1];
      g.count = m.count;
      if (!m.count) continue;
      copy_async(s, scratch(s, g.unique_ids, Shape{m.count}, DType::i64), m.unique_ids.view(0, Shape{m.count}));
      copy_async(s, scratch(s, g.rows, Shape{m.count, dim}, DType::f32), m.rows.view(0, Shape{m.count, dim}));
    }
    if (host_state_.numel()) copy_async(s, params_.state_values(), host_state_);
    s.synchronize();  // one wait for every upload: the host copies are rewritten next step
    stats_.sparse_seconds += seconds_since(t1);
    ++stats_.steps;
    return;
  }
  if (threaded_buckets_ > 0) {
    std::unique_lock<std::mutex> lock(mutex_);
    final_from_ = 0;
    changed_.notify_all();
    changed_.wait(lock, [this] { return done_buckets_ == threaded_buckets_; });
    in_step_ = false;
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }
  auto t_inline = std::chrono::steady_clock::now();
  for (size_t b = threaded_buckets_; b < buckets_.size(); ++b) reduce_bucket(b);
  stats_.comm_seconds += seconds_since(t_inline);
  stats_.exposed_seconds += seconds_since(t0);
  // The main thread makes every further call; the communication thread is idle until the next
  // begin_step (MPI_THREAD_SERIALIZED).
  auto t1 = std::chrono::steady_clock::now();
  exchange_sparse_and_state();
  stats_.sparse_seconds += seconds_since(t1);
  ++stats_.steps;
}

namespace {
// Makes `g` hold `count` rows of `dim`, reallocating when its capacity is smaller.
void reserve_sparse(SparseGrad<float>& g, int64_t count, int64_t dim) {
  int64_t capacity = g.unique_ids.defined() ? g.unique_ids.numel() : 0;
  if (g.rows.defined()) capacity = std::min(capacity, g.rows.numel() / std::max<int64_t>(dim, 1));
  if (capacity >= count) return;
  g.unique_ids = Tensor::empty(Shape{count}, DType::i64);
  g.rows = Tensor::empty(Shape{count, dim}, DType::f32);
}

// One rank's part of a table in the fused all-gather message: count, ids (ascending), rows.
struct Part {
  const int64_t* ids;
  const float* rows;
  int64_t count, next;
};

// Merges the ranks' sorted id lists into `g`; rows of one id are summed in rank order, so every
// rank computes the same bits.
void merge_parts(std::vector<Part>& parts, int64_t dim, SparseGrad<float>& g) {
  int64_t upper = 0;
  for (const Part& p : parts) upper += p.count;
  std::vector<int64_t> ids;
  std::vector<float> rows;
  ids.reserve(static_cast<size_t>(upper));
  rows.reserve(static_cast<size_t>(upper * dim));
  for (;;) {
    int64_t id = INT64_MAX;
    for (const Part& p : parts)
      if (p.next < p.count) id = std::min(id, p.ids[p.next]);
    if (id == INT64_MAX) break;
    size_t at = rows.size();
    rows.resize(at + static_cast<size_t>(dim), 0.0f);
    bool first = true;
    for (Part& p : parts) {
      if (p.next >= p.count || p.ids[p.next] != id) continue;
      const float* r = p.rows + p.next * dim;
      for (int64_t j = 0; j < dim; ++j) rows[at + j] = first ? r[j] : rows[at + j] + r[j];
      first = false;
      ++p.next;
    }
    ids.push_back(id);
  }
  int64_t count = static_cast<int64_t>(ids.size());
  reserve_sparse(g, count, dim);
  std::memcpy(g.unique_ids.raw(), ids.data(), ids.size() * 8);
  std::memcpy(g.rows.raw(), rows.data(), rows.size() * 4);
  g.count = count;
}
}  // namespace

// All tables travel together (Horovod's tensor fusion): one all-gather for the tables exchanged
// as (ids, rows), one all-reduce for those exchanged dense plus the state buffer. Per step that
// is three collectives whatever the table count; latency, not bandwidth, bounds small models.
SparseGrad<float>& GradientSync::sparse(int handle) {
  return on_device_ ? host_sparse_[static_cast<size_t>(handle)] : params_.sparse_grad(handle);
}

const Tensor& GradientSync::state() { return on_device_ ? host_state_ : params_.state_values(); }

void GradientSync::exchange_sparse_and_state() {
  std::vector<int> tables = params_.embedding_handles();
  std::vector<int64_t> counts;
  for (int h : tables) counts.push_back(sparse(h).count);
  if (!counts.empty()) comm_.all_reduce_sum(counts.data(), static_cast<int64_t>(counts.size()));
  std::vector<int> gathered, dense;
  for (size_t i = 0; i < tables.size(); ++i) {
    if (counts[i] == 0) continue;  // no rank has rows: nothing to exchange
    const int64_t vocab = params_.info(tables[i]).shape[0], dim = params_.info(tables[i]).shape[1];
    const double gather_bytes = static_cast<double>(counts[i]) * static_cast<double>(8 + 4 * dim);
    const double dense_bytes = static_cast<double>(vocab) * static_cast<double>(dim + 1) * 4.0;
    bool as_dense = config_.sparse_exchange() == DistributedConfig::DENSE ||
                    (config_.sparse_exchange() == DistributedConfig::AUTO && dense_bytes < gather_bytes);
    (as_dense ? dense : gathered).push_back(tables[i]);
  }
  stats_.sparse_dense_steps += static_cast<int64_t>(dense.size());
  stats_.sparse_gather_steps += static_cast<int64_t>(gathered.size());

  if (!gathered.empty()) {
    std::string mine;
    for (int h : gathered) {
      const SparseGrad<float>& g = sparse(h);
      const int64_t dim = params_.info(h).shape[1];
      mine.append(reinterpret_cast<const char*>(&g.count), 8);
      if (g.count) {
        mine.append(static_cast<const char*>(g.unique_ids.raw()), static_cast<size_t>(g.count) * 8);
        mine.append(static_cast<const char*>(g.rows.raw()), static_cast<size_t>(g.count * dim) * 4);
        if ((g.count * dim) % 2) mine.append(4, '\0');  // keeps the next table's count 8-byte aligned
      }
    }
    stats_.sparse_bytes += static_cast<double>(mine.size());
    std::vector<std::string> all = comm_.all_gather(mine);
    std::vector<size_t> at(all.size(), 0);
    for (int h : gathered) {
      const int64_t dim = params_.info(h).shape[1];
      std::vector<Part> parts;
      for (size_t r = 0; r < all.size(); ++r) {
        const char* base = all[r].data() + at[r];
        int64_t c = 0;
        std::memcpy(&c, base, 8);
        // The ids follow the 8-byte count, the rows the ids: 8-byte aligned within the message.
        parts.push_back({reinterpret_cast<const int64_t*>(base + 8), reinterpret_cast<const float*>(base + 8 + c * 8),
                         c, 0});
        at[r] += static_cast<size_t>(8 + c * 8 + c * dim * 4 + ((c * dim) % 2 ? 4 : 0));
      }
      merge_parts(parts, dim, sparse(h));
    }
  }

  // Dense tables: [vocab, dim] summed rows, then [vocab] presence (an id counts where any rank
  // had it, even if its rows sum to 0), per table; then the state buffer.
  const Tensor& state = this->state();
  const int64_t state_n = state.defined() ? state.numel() : 0;
  if (dense.empty() && state_n == 0) return;
  int64_t total = state_n;
  for (int h : dense) total += params_.info(h).shape[0] * (params_.info(h).shape[1] + 1);
  fused_.assign(static_cast<size_t>(total), 0.0f);
  float* at = fused_.data();
  for (int h : dense) {
    const SparseGrad<float>& g = sparse(h);
    const int64_t vocab = params_.info(h).shape[0], dim = params_.info(h).shape[1];
    float* presence = at + vocab * dim;
    for (int64_t i = 0; i < g.count; ++i) {
      const int64_t id = g.unique_ids.data<int64_t>()[i];
      std::memcpy(at + id * dim, g.rows.data<float>() + i * dim, static_cast<size_t>(dim) * sizeof(float));
      presence[id] = 1.0f;
    }
    at += vocab * (dim + 1);
  }
  if (state_n) std::memcpy(at, state.raw(), static_cast<size_t>(state_n) * sizeof(float));
  comm_.all_reduce_sum(fused_.data(), total);
  stats_.sparse_bytes += static_cast<double>(total) * sizeof(float);
  at = fused_.data();
  for (int h : dense) {
    SparseGrad<float>& g = sparse(h);
    const int64_t vocab = params_.info(h).shape[0], dim = params_.info(h).shape[1];
    const float* presence = at + vocab * dim;
    int64_t count = 0;
    for (int64_t id = 0; id < vocab; ++id) count += presence[id] > 0;
    reserve_sparse(g, count, dim);
    int64_t* ids = g.unique_ids.data<int64_t>();
    float* rows = g.rows.data<float>();
    for (int64_t id = 0, k = 0; id < vocab; ++id) {
      if (!(presence[id] > 0)) continue;
      ids[k] = id;
      std::memcpy(rows + k * dim, at + id * dim, static_cast<size_t>(dim) * sizeof(float));
      ++k;
    }
    g.count = count;
    at += vocab * (dim + 1);
  }
  if (state_n) {
    // Batch-norm running statistics: the mean over the ranks.
    float* s = state.data<float>();
    const float inv = 1.0f / static_cast<float>(comm_.size());
    for (int64_t i = 0; i < state_n; ++i) s[i] = at[i] * inv;
  }
}

}  // namespace kiln::models
