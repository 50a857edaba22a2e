#include "models/gradient_sync.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>

#include "core/error.h"

namespace kiln::models {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
  threaded_ = config.overlap() && comm.size() > 1 && comm.any_thread_may_call() && !buckets_.empty();
  if (threaded_) thread_ = std::thread([this] { comm_loop(); });
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
  in_step_ = true;
}

void GradientSync::dense_final_from(int64_t offset) {
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
      return stop_ || (in_step_ && next_bucket_ < buckets_.size() && final_from_ <= buckets_[next_bucket_].begin);
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
      next_bucket_ = buckets_.size();  // nothing more this step; finish_step rethrows
      done_buckets_ = buckets_.size();
    } else {
      ++done_buckets_;
    }
    changed_.notify_all();
  }
}

void GradientSync::finish_step() {
  auto t0 = std::chrono::steady_clock::now();
  if (threaded_) {
    std::unique_lock<std::mutex> lock(mutex_);
    final_from_ = 0;
    changed_.notify_all();
    changed_.wait(lock, [this] { return done_buckets_ == buckets_.size(); });
    in_step_ = false;
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    stats_.exposed_seconds += seconds_since(t0);
  } else {
    for (size_t b = 0; b < buckets_.size(); ++b) reduce_bucket(b);
    double secs = seconds_since(t0);
    stats_.comm_seconds += secs;
    stats_.exposed_seconds += secs;
  }
  // The main thread makes every further call; the communication thread is idle until the next
  // begin_step (MPI_THREAD_SERIALIZED).
  auto t1 = std::chrono::steady_clock::now();
  std::vector<int> tables = params_.embedding_handles();
  if (!tables.empty()) {
    std::vector<int64_t> counts;
    for (int h : tables) counts.push_back(params_.sparse_grad(h).count);
    comm_.all_reduce_sum(counts.data(), static_cast<int64_t>(counts.size()));
    for (size_t i = 0; i < tables.size(); ++i) exchange_sparse(tables[i], counts[i]);
  }
  const Tensor& state = params_.state_values();
  if (state.defined() && state.numel() > 0) {
    float* s = state.data<float>();
    comm_.all_reduce_sum(s, state.numel());
    const float inv = 1.0f / static_cast<float>(comm_.size());
    for (int64_t i = 0; i < state.numel(); ++i) s[i] *= inv;
  }
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

void GradientSync::exchange_sparse(int handle, int64_t global_count) {
  SparseGrad<float>& g = params_.sparse_grad(handle);
  const int64_t vocab = params_.info(handle).shape[0], dim = params_.info(handle).shape[1];
  const double gather_bytes = static_cast<double>(global_count) * static_cast<double>(8 + 4 * dim);
  const double dense_bytes = static_cast<double>(vocab) * static_cast<double>(dim + 1) * 4.0;
  bool dense = config_.sparse_exchange() == DistributedConfig::DENSE ||
               (config_.sparse_exchange() == DistributedConfig::AUTO && dense_bytes < gather_bytes);
  if (global_count == 0) return;
  if (dense) {
    ++stats_.sparse_dense_steps;
    // [vocab, dim] summed rows, then [vocab] presence (an id counts even where its rows sum to 0).
    std::vector<float>& buf = dense_tables_[handle];
    buf.assign(static_cast<size_t>(vocab * (dim + 1)), 0.0f);
    float* presence = buf.data() + vocab * dim;
    const int64_t* ids = g.count ? g.unique_ids.data<int64_t>() : nullptr;
    const float* rows = g.count ? g.rows.data<float>() : nullptr;
    for (int64_t i = 0; i < g.count; ++i) {
      std::memcpy(buf.data() + ids[i] * dim, rows + i * dim, static_cast<size_t>(dim) * sizeof(float));
      presence[ids[i]] = 1.0f;
    }
    comm_.all_reduce_sum(buf.data(), static_cast<int64_t>(buf.size()));
    stats_.sparse_bytes += dense_bytes;
    int64_t count = 0;
    for (int64_t id = 0; id < vocab; ++id) count += presence[id] > 0;
    reserve_sparse(g, count, dim);
    int64_t* out_ids = g.unique_ids.data<int64_t>();
    float* out_rows = g.rows.data<float>();
    int64_t at = 0;
    for (int64_t id = 0; id < vocab; ++id) {
      if (!(presence[id] > 0)) continue;
      out_ids[at] = id;
      std::memcpy(out_rows + at * dim, buf.data() + id * dim, static_cast<size_t>(dim) * sizeof(float));
      ++at;
    }
    g.count = count;
    return;
  }
  ++stats_.sparse_gather_steps;
  // This rank's ids (ascending) then its rows.
  std::string mine(static_cast<size_t>(g.count * (8 + 4 * dim)), '\0');
  if (g.count) {
    std::memcpy(mine.data(), g.unique_ids.raw(), static_cast<size_t>(g.count) * 8);
    std::memcpy(mine.data() + g.count * 8, g.rows.raw(), static_cast<size_t>(g.count * dim) * 4);
  }
  stats_.sparse_bytes += static_cast<double>(mine.size());
  std::vector<std::string> all = comm_.all_gather(mine);
  // Merge the sorted id lists; rows of one id are summed in rank order, so every rank computes
  // the same bits.
  struct Part {
    const int64_t* ids;
    const float* rows;
    int64_t count, next;
  };
  std::vector<Part> parts;
  for (const std::string& bytes : all) {
    int64_t c = static_cast<int64_t>(bytes.size()) / (8 + 4 * dim);
    parts.push_back({reinterpret_cast<const int64_t*>(bytes.data()),
                     reinterpret_cast<const float*>(bytes.data() + c * 8), c, 0});
  }
  std::vector<int64_t> ids;
  std::vector<float> rows;
  ids.reserve(static_cast<size_t>(global_count));
  rows.reserve(static_cast<size_t>(global_count * dim));
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

}  // namespace kiln::models
