// choose_device and local_rank (core/device_choice.h): the device a process takes from its config
// and, with device_index -1, from its launcher's local rank (mpirun, srun, ...).
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>

#include "core/device_choice.h"
#include "core/error.h"
#include "core/sim/sim_memory.h"

namespace kiln {
namespace {

using Vars = std::map<std::string, std::string>;

// Sets the launcher variables a test names, unsets the others, and puts them all back after.
class LauncherEnv {
 public:
  explicit LauncherEnv(const Vars& set) {
    for (const char* var : kLocalRankVariables) {
      if (const char* v = std::getenv(var)) saved_[var] = v;
      unsetenv(var);
    }
    for (const auto& [var, value] : set) setenv(var.c_str(), value.c_str(), 1);
  }
  ~LauncherEnv() {
    for (const char* var : kLocalRankVariables) unsetenv(var);
    for (const auto& [var, value] : saved_) setenv(var.c_str(), value.c_str(), 1);
  }

 private:
  std::map<std::string, std::string> saved_;
};

TEST(LocalRank, ZeroWithoutALauncher) {
  LauncherEnv env(Vars{});
  EXPECT_EQ(local_rank(), 0);
}

TEST(LocalRank, ReadsEachLaunchersVariable) {
  for (const char* var : kLocalRankVariables) {
    LauncherEnv env(Vars{{var, "3"}});
    EXPECT_EQ(local_rank(), 3) << var;
  }
}

TEST(LocalRank, OpenMpiWinsOverSlurmAndMalformedValuesAreSkipped) {
  {
    LauncherEnv env(Vars{{"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"SLURM_LOCALID", "5"}});
    EXPECT_EQ(local_rank(), 1);
  }
  {
    LauncherEnv env(Vars{{"OMPI_COMM_WORLD_LOCAL_RANK", "one"}, {"SLURM_LOCALID", "5"}});
    EXPECT_EQ(local_rank(), 5);
  }
  {
    LauncherEnv env(Vars{{"SLURM_LOCALID", "-2"}});
    EXPECT_EQ(local_rank(), 0);
  }
}

TEST(ChooseDevice, SimTakesTheLocalRanksDeviceUnlessAnIndexIsSet) {
  {
    LauncherEnv env(Vars{{"OMPI_COMM_WORLD_LOCAL_RANK", "1"}});
    EXPECT_EQ(choose_device(Device::Kind::sim, -1, ""), Device::sim(1));
    EXPECT_EQ(choose_device(Device::Kind::sim, 0, ""), Device::sim(0));
  }
  {
    LauncherEnv env(Vars{{"SLURM_LOCALID", std::to_string(sim::kSimDeviceCount + 2)}});
    EXPECT_EQ(choose_device(Device::Kind::sim, -1, ""), Device::sim(2)) << "modulo the devices there are";
  }
  {
    LauncherEnv env(Vars{});
    EXPECT_EQ(choose_device(Device::Kind::sim, -1, ""), Device::sim(0));
    EXPECT_EQ(choose_device(Device::Kind::cpu, -1, ""), Device::cpu());
    EXPECT_THROW(choose_device(Device::Kind::sim, sim::kSimDeviceCount, ""), Error);
  }
}

TEST(ChooseDevice, CudaWithoutAGpuSaysWhyAndHowToChooseAnother) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "this machine has a GPU";
  LauncherEnv env(Vars{{"OMPI_COMM_WORLD_LOCAL_RANK", "1"}});
  try {
    choose_device(Device::Kind::cuda, -1, "set device: SIM");
    FAIL() << "device: CUDA without a GPU was chosen";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("no CUDA device is visible"), std::string::npos) << what;
    EXPECT_NE(what.find("set device: SIM"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace kiln
