#include "models/gradient_sync.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>

#include "core/current_device.h"
#include "core/error.h"
#include "core/stream.h"
#include "kernels/cpu/sparse_rows.h"
#include "kernels/reduce.h"
#include "kernels/sparse_rows.h"
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
  // It reduces host buckets today; whatever it queues to a device goes to the trainer's device.
  make_device_current(params_.stream().device());
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
    auto t1 = std::chrono::steady_clock::now();
    exchange_sparse_and_state_on_device();
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

}  // namespace

bool GradientSync::exchange_as_dense(int handle, int64_t rows_over_ranks) const {
  const int64_t vocab = params_.info(handle).shape[0], dim = params_.info(handle).shape[1];
  const double gather_bytes = static_cast<double>(rows_over_ranks) * static_cast<double>(8 + 4 * dim);
  const double dense_bytes = static_cast<double>(vocab) * static_cast<double>(dim + 1) * 4.0;
  return config_.sparse_exchange() == DistributedConfig::DENSE ||
         (config_.sparse_exchange() == DistributedConfig::AUTO && dense_bytes < gather_bytes);
}

// All tables travel together (Horovod's tensor fusion): one all-gather for the tables exchanged
// as (ids, rows), one all-reduce for those exchanged dense plus the state buffer. Per step that
// is three collectives whatever the table count; latency, not bandwidth, bounds small models.
void GradientSync::exchange_sparse_and_state() {
  std::vector<int> tables = params_.embedding_handles();
  std::vector<int64_t> counts;
  for (int h : tables) counts.push_back(params_.sparse_grad(h).count);
  if (!counts.empty()) comm_.all_reduce_sum(counts.data(), static_cast<int64_t>(counts.size()));
  std::vector<int> gathered, dense;
  for (size_t i = 0; i < tables.size(); ++i) {
    if (counts[i] == 0) continue;  // no rank has rows: nothing to exchange
    (exchange_as_dense(tables[i], counts[i]) ? dense : gathered).push_back(tables[i]);
  }
  stats_.sparse_dense_steps += static_cast<int64_t>(dense.size());
  stats_.sparse_gather_steps += static_cast<int64_t>(gathered.size());

  if (!gathered.empty()) {
    std::string mine;
    for (int h : gathered) {
      const SparseGrad<float>& g = params_.sparse_grad(h);
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
      std::vector<kernels::cpu::SparseRowsPart> parts;
      int64_t upper = 0;
      for (size_t r = 0; r < all.size(); ++r) {
        const char* base = all[r].data() + at[r];
        int64_t c = 0;
        std::memcpy(&c, base, 8);
        // The ids follow the 8-byte count, the rows the ids: 8-byte aligned within the message.
        parts.push_back({reinterpret_cast<const int64_t*>(base + 8), reinterpret_cast<const float*>(base + 8 + c * 8), c});
        upper += c;
        at[r] += static_cast<size_t>(8 + c * 8 + c * dim * 4 + ((c * dim) % 2 ? 4 : 0));
      }
      SparseGrad<float>& g = params_.sparse_grad(h);
      reserve_sparse(g, upper, dim);
      g.count = kernels::cpu::sparse_rows_merge(parts, dim, g.unique_ids.data<int64_t>(), g.rows.data<float>());
    }
  }

  // Dense tables: [vocab, dim] summed rows, then [vocab] presence (an id counts where any rank
  // had it, even if its rows sum to 0), per table; then the state buffer.
  const Tensor& state = params_.state_values();
  const int64_t state_n = state.defined() ? state.numel() : 0;
  if (dense.empty() && state_n == 0) return;
  int64_t total = state_n;
  for (int h : dense) total += params_.info(h).shape[0] * (params_.info(h).shape[1] + 1);
  fused_.assign(static_cast<size_t>(total), 0.0f);
  float* at = fused_.data();
  for (int h : dense) {
    const SparseGrad<float>& g = params_.sparse_grad(h);
    const int64_t vocab = params_.info(h).shape[0], dim = params_.info(h).shape[1];
    if (g.count)
      kernels::cpu::sparse_rows_to_dense(g.unique_ids.data<int64_t>(), g.rows.data<float>(), g.count, vocab, dim, at,
                                         at + vocab * dim);
    at += vocab * (dim + 1);
  }
  if (state_n) std::memcpy(at, state.raw(), static_cast<size_t>(state_n) * sizeof(float));
  comm_.all_reduce_sum(fused_.data(), total);
  stats_.sparse_bytes += static_cast<double>(total) * sizeof(float);
  at = fused_.data();
  for (int h : dense) {
    SparseGrad<float>& g = params_.sparse_grad(h);
    const int64_t vocab = params_.info(h).shape[0], dim = params_.info(h).shape[1];
    const float* presence = at + vocab * dim;
    int64_t count = 0;
    for (int64_t id = 0; id < vocab; ++id) count += presence[id] > 0;
    reserve_sparse(g, count, dim);
    g.count = kernels::cpu::sparse_rows_from_dense(at, presence, vocab, dim, g.unique_ids.data<int64_t>(),
                                                   g.rows.data<float>());
    at += vocab * (dim + 1);
  }
  if (state_n) {
    // Batch-norm running statistics: the mean over the ranks.
    float* s = state.data<float>();
    const float inv = 1.0f / static_cast<float>(comm_.size());
    for (int64_t i = 0; i < state_n; ++i) s[i] = at[i] * inv;
  }
}

// The same exchange on device buffers, by the device communicator (NCCL; the sim's stand-in),
// in the order of the compute stream, which already waits for the dense all-reduces: no host
// copy of the gradients or the state. The per-table counts are host values (embedding_backward
// returned them), so the ranks swap them over the host communicator; the merged counts are read
// back once per step, one small copy for all tables, because the optimizer needs them on the host.
void GradientSync::exchange_sparse_and_state_on_device() {
  const Stream& s = params_.stream();
  const int ranks = comm_.size();
  std::vector<int> tables = params_.embedding_handles();
  std::vector<int64_t> mine;
  for (int h : tables) mine.push_back(params_.sparse_grad(h).count);
  // counts[r][i]: rank r's rows of table i.
  std::vector<std::vector<int64_t>> counts(static_cast<size_t>(ranks));
  if (!tables.empty()) {
    std::vector<std::string> all =
        comm_.all_gather(std::string(reinterpret_cast<const char*>(mine.data()), mine.size() * sizeof(int64_t)));
    for (int r = 0; r < ranks; ++r) {
      if (all[r].size() != mine.size() * sizeof(int64_t))
        fail("rank ", r, " has ", all[r].size() / sizeof(int64_t), " embedding tables, this rank ", mine.size());
      counts[r].resize(mine.size());
      std::memcpy(counts[r].data(), all[r].data(), all[r].size());
    }
  }
  // Per exchanged table: its handle, its index in `tables`, the most rows any rank has and its
  // byte offset in a rank's all-gather buffer (ids, then rows, 8-byte aligned).
  struct Table {
    int h;
    size_t index;
    int64_t capacity, offset;
  };
  std::vector<Table> gathered, dense;
  for (size_t i = 0; i < tables.size(); ++i) {
    int64_t sum = 0, most = 0;
    for (int r = 0; r < ranks; ++r) sum += counts[r][i], most = std::max(most, counts[r][i]);
    if (sum == 0) continue;  // no rank has rows: nothing to exchange
    (exchange_as_dense(tables[i], sum) ? dense : gathered).push_back({tables[i], i, most, 0});
  }
  stats_.sparse_dense_steps += static_cast<int64_t>(dense.size());
  stats_.sparse_gather_steps += static_cast<int64_t>(gathered.size());
  stats_.sparse_device_steps += static_cast<int64_t>(gathered.size() + dense.size());
  // The merged counts, gathered tables first: one device array read back once.
  const size_t exchanged = gathered.size() + dense.size();
  if (exchanged) scratch(s, merged_counts_, Shape{static_cast<int64_t>(exchanged)}, DType::i64);
  int64_t* merged = exchanged ? merged_counts_.data<int64_t>() : nullptr;

  if (!gathered.empty()) {
    // One fixed-size buffer per rank, every table padded (with zeros) to its largest count, so
    // the all-gather needs no per-rank sizes.
    int64_t bytes = 0;
    for (Table& t : gathered) {
      const int64_t dim = params_.info(t.h).shape[1];
      t.offset = bytes;
      bytes += t.capacity * 8 + (t.capacity * dim * 4 + 7) / 8 * 8;
    }
    Tensor send = scratch(s, gather_send_, Shape{bytes / 8}, DType::i64);
    Tensor recv = scratch(s, gather_recv_, Shape{ranks * bytes / 8}, DType::i64);
    zero_async(s, send);
    auto* send_bytes = static_cast<char*>(send.raw());
    for (const Table& t : gathered) {
      const SparseGrad<float>& g = params_.sparse_grad(t.h);
      const int64_t dim = params_.info(t.h).shape[1];
      if (!g.count) continue;
      const auto ids_bytes = static_cast<size_t>(g.count) * 8, rows_bytes = static_cast<size_t>(g.count * dim) * 4;
      copy_rows_async(s, send_bytes + t.offset, ids_bytes, g.unique_ids.raw(), ids_bytes, ids_bytes, 1);
      copy_rows_async(s, send_bytes + t.offset + t.capacity * 8, rows_bytes, g.rows.raw(), rows_bytes, rows_bytes, 1);
    }
    device_comm_->all_gather(s, send.raw(), recv.raw(), bytes);
    stats_.sparse_bytes += static_cast<double>(bytes);
    const auto* recv_bytes = static_cast<const char*>(recv.raw());
    for (size_t k = 0; k < gathered.size(); ++k) {
      const Table& t = gathered[k];
      const int64_t dim = params_.info(t.h).shape[1];
      std::vector<int64_t> part_counts;
      int64_t upper = 0;
      for (int r = 0; r < ranks; ++r) part_counts.push_back(counts[r][t.index]), upper += counts[r][t.index];
      SparseGrad<float>& g = params_.sparse_grad(t.h);
      Tensor ids = scratch(s, g.unique_ids, Shape{upper}, DType::i64);
      Tensor rows = scratch(s, g.rows, Shape{upper, dim}, DType::f32);
      kernels::sparse_rows_merge(s, reinterpret_cast<const int64_t*>(recv_bytes + t.offset), bytes / 8,
                                 reinterpret_cast<const float*>(recv_bytes + t.offset + t.capacity * 8), bytes / 4,
                                 ranks, part_counts.data(), dim, ids.data<int64_t>(), rows.data<float>(), merged + k);
    }
  }

  // Dense tables: [vocab, dim] summed rows, then [vocab] presence, per table; then the state.
  const Tensor& state = params_.state_values();
  const int64_t state_n = state.defined() ? state.numel() : 0;
  if (!dense.empty() || state_n) {
    int64_t total = state_n;
    for (const Table& t : dense) total += params_.info(t.h).shape[0] * (params_.info(t.h).shape[1] + 1);
    Tensor fused = scratch(s, device_fused_, Shape{total}, DType::f32);
    zero_async(s, fused);
    int64_t at = 0;
    for (const Table& t : dense) {
      const SparseGrad<float>& g = params_.sparse_grad(t.h);
      const int64_t vocab = params_.info(t.h).shape[0], dim = params_.info(t.h).shape[1];
      float* base = fused.data<float>() + at;
      if (g.count)
        kernels::sparse_rows_to_dense(s, g.unique_ids.data<int64_t>(), g.rows.data<float>(), g.count, vocab, dim, base,
                                      base + vocab * dim);
      at += vocab * (dim + 1);
    }
    if (state_n) copy_async(s, fused.view(at, Shape{state_n}), state);
    device_comm_->all_reduce_sum(s, fused.data<float>(), total);
    stats_.sparse_bytes += static_cast<double>(total) * sizeof(float);
    at = 0;
    for (size_t k = 0; k < dense.size(); ++k) {
      const Table& t = dense[k];
      SparseGrad<float>& g = params_.sparse_grad(t.h);
      const int64_t vocab = params_.info(t.h).shape[0], dim = params_.info(t.h).shape[1];
      // Room for every id: how many are present is known on the device only.
      Tensor ids = scratch(s, g.unique_ids, Shape{vocab}, DType::i64);
      Tensor rows = scratch(s, g.rows, Shape{vocab, dim}, DType::f32);
      const float* base = fused.data<float>() + at;
      kernels::sparse_rows_from_dense(s, base, base + vocab * dim, vocab, dim, ids.data<int64_t>(), rows.data<float>(),
                                      merged + gathered.size() + k);
      at += vocab * (dim + 1);
    }
    if (state_n) {
      // Batch-norm running statistics: the mean over the ranks (x * (1 / ranks), as on the host).
      copy_async(s, state, fused.view(at, Shape{state_n}));
      kernels::scale_inplace(s, state.data<float>(), state_n, 1.0f / static_cast<float>(ranks));
    }
  }
  if (!exchanged) return;
  const Tensor host = to_host(s, merged_counts_.view(0, Shape{static_cast<int64_t>(exchanged)}));
  for (size_t k = 0; k < exchanged; ++k)
    params_.sparse_grad(k < gathered.size() ? gathered[k].h : dense[k - gathered.size()].h).count =
        host.data<int64_t>()[k];
}

}  // namespace kiln::models
