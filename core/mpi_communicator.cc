// Communicator over MPI (host memory). Every call is checked; a failure names the rank.
#include <mpi.h>

#include <cstdlib>

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
      int provided = 0;
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      std::atexit([] {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
      });
    }
    // Errors come back as codes we turn into kiln::Error naming the rank.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

  std::vector<std::string> all_gather(const std::string& bytes) override {
    long long mine = static_cast<long long>(bytes.size());
    std::vector<long long> sizes(size_);
    check(MPI_Allgather(&mine, 1, MPI_LONG_LONG, sizes.data(), 1, MPI_LONG_LONG, MPI_COMM_WORLD), "MPI_Allgather");
    std::vector<int> counts(size_), displs(size_);
    long long total = 0;
    for (int r = 0; r < size_; ++r) {
      if (sizes[r] > (1ll << 30)) fail(describe(), ": all_gather of ", sizes[r], " bytes from rank ", r, " is too large");
      counts[r] = static_cast<int>(sizes[r]);
      displs[r] = static_cast<int>(total);
      total += sizes[r];
    }
    std::string all(static_cast<size_t>(total), '\0');
    check(MPI_Allgatherv(bytes.data(), counts[rank_], MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE,
                         MPI_COMM_WORLD),
          "MPI_Allgatherv");
    std::vector<std::string> out(size_);
    for (int r = 0; r < size_; ++r) out[r] = all.substr(displs[r], counts[r]);
    return out;
  }

  std::string broadcast(const std::string& bytes, int root) override {
    long long n = rank_ == root ? static_cast<long long>(bytes.size()) : 0;
    check(MPI_Bcast(&n, 1, MPI_LONG_LONG, root, MPI_COMM_WORLD), "MPI_Bcast");
    std::string out = rank_ == root ? bytes : std::string(static_cast<size_t>(n), '\0');
    check(MPI_Bcast(out.data(), static_cast<int>(n), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    return out;
  }

  void all_reduce_sum(double* data, int64_t n) override {
    check(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  }
  void all_reduce_sum(int64_t* data, int64_t n) override {
    check(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD),
          "MPI_Allreduce");
  }

 private:
  void check(int code, const char* what) const {
    if (code == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, msg, &len);
    fail("rank ", rank_, "/", size_, ": ", what, " failed: ", std::string(msg, static_cast<size_t>(len)));
  }
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

}  // namespace kiln
