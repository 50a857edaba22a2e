#pragma once
// The one place that turns a configured device (TrainConfig/ServeConfig `device` and
// `device_index`, or --device) into a Device, before any data is read: a CUDA device that is not
// there fails at once, saying why and how to choose another.
#include <string>

#include "core/device.h"

namespace kiln {

// index < 0: for CUDA the GPU of this process's local rank under mpirun/srun
// (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID; modulo the visible GPUs), else 0; for SIM 0.
// `how_to_choose` ends the error, e.g. "set device: CPU or device: SIM (--set device=CPU)".
Device choose_device(Device::Kind kind, int index, const std::string& how_to_choose);

// The local rank of this process on its node from the launcher's environment; 0 without one.
int local_rank();

// Why no CUDA device is usable ("this build of kiln has no CUDA backend", the CUDA runtime's
// error, or that none is visible); empty when at least one is.
std::string cuda_unavailable_reason();

// "cpu", "cuda", "sim" (any case) -> Kind; an error lists the valid names.
Device::Kind parse_device_kind(const std::string& name);

}  // namespace kiln
