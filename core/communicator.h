#pragma once
// Collective communication between the processes of one job. A single process uses
// LocalCommunicator; under mpirun/srun (OpenMPI) MpiCommunicator. Every call is a collective:
// all ranks make the same calls in the same order. Errors name the rank ("rank 1/4: ...").
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
  virtual void all_reduce_sum(float* data, int64_t n) = 0;
  // Rank `root`'s `bytes` bytes at `data` overwrite every other rank's.
  virtual void broadcast_in_place(void* data, int64_t bytes, int root) = 0;
  // True when any one thread at a time may make the calls (not only the thread that started
  // MPI): a communication thread may then run collectives while the main thread computes.
  virtual bool any_thread_may_call() const { return true; }
  // A collective that has not completed after `seconds` (0: no limit) means a peer rank died or
  // hangs: this rank prints which call it was waiting in and exits with status 1, which makes
  // the launcher end the job.
  virtual void set_collective_timeout(double /*seconds*/) {}
  // Ends every process of the job with `code`; the caller has printed why.
  [[noreturn]] virtual void abort(int code) = 0;
  // A communicator over the same ranks whose collectives never match this one's (MPI_Comm_dup),
  // that another thread may call while this one's caller makes calls of its own: the sim's
  // stand-in for NCCL calls it from a stream's worker thread. A collective call. Null when calls
  // from two threads at once are not allowed (MPI without MPI_THREAD_MULTIPLE).
  virtual std::unique_ptr<Communicator> duplicate() { return nullptr; }
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
  void all_reduce_sum(float*, int64_t) override {}
  void broadcast_in_place(void*, int64_t, int) override {}
  [[noreturn]] void abort(int code) override;
  std::unique_ptr<Communicator> duplicate() override { return std::make_unique<LocalCommunicator>(); }
};

// True when this process was started by an MPI launcher (mpirun, srun with PMI/PMIx).
bool launched_by_mpi();
// The communicator for this process: MPI when launched by mpirun/srun (and built with MPI),
// local otherwise. Initialises MPI on first use; it is finalised at exit.
Communicator& world();
// The world communicator if world() has been called, else null (error paths use it to end the
// whole job without starting MPI just to do so).
Communicator* world_if_started();

}  // namespace kiln
