#pragma once
// The CUDA DeviceCommunicator: NCCL, one rank per GPU (kiln_nccl only).
#include <memory>

#include "core/device_communicator.h"

namespace kiln::cuda {

// Every rank of `host` calls this with its GPU; it blocks until all ranks joined.
std::unique_ptr<DeviceCommunicator> make_nccl_device_communicator(Communicator& host, int device);

}  // namespace kiln::cuda
