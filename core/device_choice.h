#pragma once
// The one place that turns a configured device (TrainConfig/ServeConfig `device` and
// `device_index`, or --device) into a Device, before any data is read: a CUDA device that is not
// there fails at once, saying why and how to choose another.
#include <string>

#include "core/device.h"

namespace kiln {

// index < 0: the device of this process's local rank (local_rank()) modulo the devices there are
// (the visible GPUs; the sim's kSimDeviceCount, so 2 sim ranks use sim:0 and sim:1 as 2 GPU ranks
// use two GPUs); 0 without a launcher. `how_to_choose` ends the error, e.g. "set device: CPU or
// device: SIM (--set device=CPU)".
Device choose_device(Device::Kind kind, int index, const std::string& how_to_choose);

// The launchers' variables that hold a process's local rank on its node, the first set wins:
// OpenMPI's mpirun, Slurm's srun, MPICH's Hydra (two), torchrun.
inline constexpr const char* kLocalRankVariables[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID",
                                                      "MPI_LOCALRANKID", "PMI_LOCAL_RANK", "LOCAL_RANK"};

// The local rank of this process on its node from the first of kLocalRankVariables that holds a
// non-negative integer; 0 without one.
int local_rank();

// Why no CUDA device is usable ("this build of kiln has no CUDA backend", the CUDA runtime's
// error, or that none is visible); empty when at least one is.
std::string cuda_unavailable_reason();

// "cpu", "cuda", "sim" (any case) -> Kind; an error lists the valid names.
Device::Kind parse_device_kind(const std::string& name);

}  // namespace kiln
