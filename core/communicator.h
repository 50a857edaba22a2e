#pragma once
// Collective communication between the processes of one job. A single process uses
// LocalCommunicator; under mpirun/srun (OpenMPI) MpiCommunicator. The data-parallel issue adds
// NCCL for device tensors behind the same interface.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void barrier() = 0;
  // Every rank receives every rank's bytes, indexed by rank.
  virtual std::vector<std::string> all_gather(const std::string& bytes) = 0;
  // Rank `root`'s bytes reach every rank (the argument is ignored elsewhere).
  virtual std::string broadcast(const std::string& bytes, int root) = 0;
  // Element-wise sum over ranks, in place.
  virtual void all_reduce_sum(double* data, int64_t n) = 0;
  virtual void all_reduce_sum(int64_t* data, int64_t n) = 0;
  std::string describe() const { return "rank " + std::to_string(rank()) + "/" + std::to_string(size()); }
};

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void barrier() override {}
  std::vector<std::string> all_gather(const std::string& bytes) override { return {bytes}; }
  std::string broadcast(const std::string& bytes, int) override { return bytes; }
  void all_reduce_sum(double*, int64_t) override {}
  void all_reduce_sum(int64_t*, int64_t) override {}
};

// True when this process was started by an MPI launcher (mpirun, srun with PMI/PMIx).
bool launched_by_mpi();
// The communicator for this process: MPI when launched by mpirun/srun (and built with MPI),
// local otherwise. Initialises MPI on first use; it is finalised at exit.
Communicator& world();

}  // namespace kiln
