// Communicator over MPI (host memory). Every call is checked and watched (a collective past the
// timeout ends the rank); a failure names the rank. Counts above 2^30 elements go in pieces
// (MPI counts are int).
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "core/collective_watchdog.h"
#include "core/communicator.h"
#include "core/error.h"

namespace kiln {
namespace {

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      // SERIALIZED would do for the trainer's communication thread, which all-reduces gradient
      // buckets while the main thread runs backward (never two calls at once); MULTIPLE for the
      // sim's stand-in for NCCL, whose collectives run on a stream's worker thread, on a
      // duplicate of the communicator, while the main thread may call MPI (duplicate()).
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided_), "MPI_Init_thread");
      std::atexit([] {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
      });
    } else {
      MPI_Query_thread(&provided_);
    }
    start(MPI_COMM_WORLD);
  }
  // A duplicate of `comm` (duplicate()).
  MpiCommunicator(MPI_Comm comm, int provided, double timeout_s) : provided_(provided) {
    start(comm);
    watchdog_->set_timeout(timeout_s);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (comm_ != MPI_COMM_WORLD && !finalized) MPI_Comm_free(&comm_);
  }
  std::unique_ptr<Communicator> duplicate() override {
    if (provided_ < MPI_THREAD_MULTIPLE) return nullptr;
    MPI_Comm dup = MPI_COMM_NULL;
    check(MPI_Comm_dup(comm_, &dup), "MPI_Comm_dup");
    return std::make_unique<MpiCommunicator>(dup, provided_, timeout_s_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  bool any_thread_may_call() const override { return provided_ >= MPI_THREAD_SERIALIZED; }
  void set_collective_timeout(double seconds) override {
    if (std::getenv("KILN_COLLECTIVE_TIMEOUT_S")) return;
    timeout_s_ = seconds;
    watchdog_->set_timeout(seconds);
  }
  [[noreturn]] void abort(int code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

  void barrier() override {
    auto guard = watchdog_->watch("MPI_Barrier");
    check(MPI_Barrier(comm_), "MPI_Barrier");
  }

  std::vector<std::string> all_gather(const std::string& bytes) override {
    auto guard = watchdog_->watch("MPI_Allgatherv");
    long long mine = static_cast<long long>(bytes.size());
    std::vector<long long> sizes(size_);
    check(MPI_Allgather(&mine, 1, MPI_LONG_LONG, sizes.data(), 1, MPI_LONG_LONG, comm_), "MPI_Allgather");
    std::vector<int> counts(size_), displs(size_);
    long long total = 0;
    for (int r = 0; r < size_; ++r) {
      if (sizes[r] > (1ll << 30)) fail("all_gather of ", sizes[r], " bytes from rank ", r, " is too large");
      counts[r] = static_cast<int>(sizes[r]);
      displs[r] = static_cast<int>(total);
      total += sizes[r];
    }
    std::string all(static_cast<size_t>(total), '\0');
    check(MPI_Allgatherv(bytes.data(), counts[rank_], MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE,
                         comm_),
          "MPI_Allgatherv");
    std::vector<std::string> out(size_);
    for (int r = 0; r < size_; ++r) out[r] = all.substr(displs[r], counts[r]);
    return out;
  }

  std::string broadcast(const std::string& bytes, int root) override {
    auto guard = watchdog_->watch("MPI_Bcast");
    long long n = rank_ == root ? static_cast<long long>(bytes.size()) : 0;
    check(MPI_Bcast(&n, 1, MPI_LONG_LONG, root, comm_), "MPI_Bcast");
    std::string out = rank_ == root ? bytes : std::string(static_cast<size_t>(n), '\0');
    check(MPI_Bcast(out.data(), static_cast<int>(n), MPI_BYTE, root, comm_), "MPI_Bcast");
    return out;
  }

  void all_reduce_sum(double* data, int64_t n) override { all_reduce(data, n, MPI_DOUBLE); }
  void all_reduce_sum(int64_t* data, int64_t n) override { all_reduce(data, n, MPI_INT64_T); }
  void all_reduce_sum(float* data, int64_t n) override { all_reduce(data, n, MPI_FLOAT); }

  void broadcast_in_place(void* data, int64_t bytes, int root) override {
    auto guard = watchdog_->watch("MPI_Bcast");
    for (int64_t done = 0; done < bytes;) {
      int64_t count = std::min<int64_t>(bytes - done, kMaxCount);
      check(MPI_Bcast(static_cast<char*>(data) + done, static_cast<int>(count), MPI_BYTE, root, comm_),
            "MPI_Bcast");
      done += count;
    }
  }

 private:
  static constexpr int64_t kMaxCount = 1ll << 30;

  void start(MPI_Comm comm) {
    comm_ = comm;
    // Errors come back as codes we turn into kiln::Error naming the rank.
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    watchdog_ = std::make_unique<CollectiveWatchdog>(describe());
    if (const char* t = std::getenv("KILN_COLLECTIVE_TIMEOUT_S")) {
      timeout_s_ = std::atof(t);
      watchdog_->set_timeout(timeout_s_);
    }
  }

  template <typename T>
  void all_reduce(T* data, int64_t n, MPI_Datatype type) {
    auto guard = watchdog_->watch("MPI_Allreduce");
    for (int64_t done = 0; done < n;) {
      int64_t count = std::min<int64_t>(n - done, kMaxCount);
      check(MPI_Allreduce(MPI_IN_PLACE, data + done, static_cast<int>(count), type, MPI_SUM, comm_),
            "MPI_Allreduce");
      done += count;
    }
  }

  void check(int code, const char* what) const {
    if (code == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, msg, &len);
    // No rank here: cli/main.cc prefixes every error of a multi-rank job with it.
    fail(what, " failed: ", std::string(msg, static_cast<size_t>(len)));
  }
  int rank_ = 0, size_ = 1;
  int provided_ = MPI_THREAD_SINGLE;
  MPI_Comm comm_ = MPI_COMM_WORLD;
  double timeout_s_ = 0;
  std::unique_ptr<CollectiveWatchdog> watchdog_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

}  // namespace kiln
