#include "core/communicator.h"

#include <atomic>
#include <cstdlib>

#include "core/error.h"

namespace kiln {

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_PROCID"})
    if (std::getenv(v)) return true;
  return false;
}

std::unique_ptr<Communicator> make_mpi_communicator();  // mpi_communicator.cc, or below

namespace {
std::atomic<Communicator*> started{nullptr};
}

Communicator& world() {
  static std::unique_ptr<Communicator> comm = [] {
    std::unique_ptr<Communicator> c;
    if (launched_by_mpi()) c = make_mpi_communicator();
    if (!c) c = std::make_unique<LocalCommunicator>();
    started.store(c.get());
    return c;
  }();
  return *comm;
}

Communicator* world_if_started() { return started.load(); }

void LocalCommunicator::abort(int code) { std::exit(code); }

#ifndef KILN_HAVE_MPI
std::unique_ptr<Communicator> make_mpi_communicator() {
  fail("this process was started by an MPI launcher, but this build of kiln has no MPI support");
}
#endif

}  // namespace kiln
