#pragma once
// The <op>_devices tests: the same inputs through kernels::<op> on the cpu, on the sim device and
// on CUDA (skipped without a GPU); sim must match the CPU bit for bit (it runs the CPU code on
// device memory), CUDA within a tolerance. A test writes one function from a DeviceRunner to the
// op's outputs, concatenated as doubles (exact for f32, i32 and i64 values below 2^53).
//
//   TEST_P(ActivationDevices, Forward) {
//     expect_same_as_cpu([&](DeviceRunner& d) {
//       float* y = d.alloc<float>(n);
//       kernels::activation_forward<float>(d.stream(), act, 0.1f, d.upload(x), y, n);
//       return d.download(y, n);
//     });
//   }
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <ostream>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/device_choice.h"
#include "core/error.h"
#include "core/sim/sim_copy.h"
#include "core/sim/sim_memory.h"
#include "core/sim/sim_stream.h"
#include "core/stream.h"
#include "tests/kernels/test_util.h"
#if KILN_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace kiln {
// GoogleTest prints a parameter with this ("GetParam() = sim").
inline void PrintTo(Device::Kind kind, std::ostream* os) {
  *os << (kind == Device::Kind::cpu ? "cpu" : kind == Device::Kind::sim ? "sim" : "cuda");
}
}  // namespace kiln

namespace kiln::test {

// Device memory and a stream on one device; frees what it allocated when destroyed.
class DeviceRunner {
 public:
  explicit DeviceRunner(Device::Kind kind) : kind_(kind) {
    if (kind_ == Device::Kind::sim) sim_stream_ = std::make_unique<sim::SimStream>();
  }
  ~DeviceRunner() {
    if (sim_stream_) {
      try {
        sim_stream_->synchronize();
      } catch (const std::exception&) {  // a test that provoked an error already checked it
      }
    }
    for (void* p : owned_) release(p);
  }
  DeviceRunner(const DeviceRunner&) = delete;
  DeviceRunner& operator=(const DeviceRunner&) = delete;

  Device::Kind kind() const { return kind_; }
  Stream stream() const {
    switch (kind_) {
      case Device::Kind::cpu: return Stream::cpu();
      case Device::Kind::sim: return sim_stream_->view();
      case Device::Kind::cuda: return Stream::cuda(0, nullptr);
    }
    return Stream::cpu();
  }

  // n elements nothing wrote yet: all-ones bytes (NaN, -1) on cpu and cuda, the sim's poison.
  template <typename T>
  T* alloc(size_t n) {
    return static_cast<T*>(allocate(n * sizeof(T)));
  }
  // A device copy of `host`, complete when this returns.
  template <typename T>
  T* upload(const std::vector<T>& host) {
    T* p = alloc<T>(host.size());
    copy(p, host.data(), host.size() * sizeof(T), true);
    return p;
  }
  // The n elements at p, after the stream has finished everything queued.
  template <typename T>
  std::vector<double> download(const T* p, size_t n) {
    std::vector<T> host(n);
    copy(host.data(), p, n * sizeof(T), false);
    return std::vector<double>(host.begin(), host.end());
  }

 private:
  void* allocate(size_t bytes) {
    void* p = nullptr;
    switch (kind_) {
      case Device::Kind::cpu:
        p = ::operator new(bytes + 1);
        std::memset(p, 0xFF, bytes);
        break;
      case Device::Kind::sim: p = sim::sim_memory().allocate(bytes); break;
      case Device::Kind::cuda:
#if KILN_HAVE_CUDA
        if (cudaMalloc(&p, bytes + 1) != cudaSuccess || cudaMemset(p, 0xFF, bytes) != cudaSuccess)
          fail("cudaMalloc of ", bytes, " bytes failed");
#endif
        break;
    }
    owned_.push_back(p);
    return p;
  }
  void release(void* p) {
    switch (kind_) {
      case Device::Kind::cpu: ::operator delete(p); return;
      case Device::Kind::sim: sim::sim_memory().free(p); return;
      case Device::Kind::cuda:
#if KILN_HAVE_CUDA
        cudaFree(p);
#endif
        return;
    }
  }
  // Host to device (to_device) or back, complete when this returns.
  void copy(void* dst, const void* src, size_t bytes, bool to_device) {
    switch (kind_) {
      case Device::Kind::cpu: std::memcpy(dst, src, bytes); return;
      case Device::Kind::sim:
        if (to_device) {
          sim::copy_host_to_device_async(*sim_stream_, dst, src, bytes);
        } else {
          sim::copy_device_to_host_async(*sim_stream_, dst, src, bytes);
        }
        sim_stream_->synchronize();
        return;
      case Device::Kind::cuda:
#if KILN_HAVE_CUDA
        if (cudaDeviceSynchronize() != cudaSuccess ||
            cudaMemcpy(dst, src, bytes, to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost) != cudaSuccess)
          fail("cudaMemcpy failed");
#endif
        return;
    }
  }

  Device::Kind kind_;
  std::unique_ptr<sim::SimStream> sim_stream_;
  std::vector<void*> owned_;
};

inline std::string device_kind_name(const testing::TestParamInfo<Device::Kind>& info) {
  switch (info.param) {
    case Device::Kind::cpu: return "cpu";
    case Device::Kind::sim: return "sim";
    case Device::Kind::cuda: return "cuda";
  }
  return "unknown";
}

// f() throws a kiln::Error whose message holds every needle.
template <typename F>
void expect_error(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no kiln::Error";
  } catch (const Error& e) {
    for (const std::string& needle : needles)
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "'" << needle << "' not in: " << e.what();
  }
}

// out += more.
inline void append(std::vector<double>& out, const std::vector<double>& more) {
  out.insert(out.end(), more.begin(), more.end());
}

// Parametrized over the device kinds; CUDA is skipped when no GPU is usable, or fails with
// KILN_REQUIRE_GPU=1 (scripts/gpu_check.sh), so a run that cannot reach the GPU cannot pass.
class DeviceTest : public testing::TestWithParam<Device::Kind> {
 protected:
  void SetUp() override {
    if (GetParam() != Device::Kind::cuda) return;
    const std::string why = cuda_unavailable_reason();
    if (why.empty()) return;
    const char* required = std::getenv("KILN_REQUIRE_GPU");
    if (required && *required && std::strcmp(required, "0") != 0)
      FAIL() << "KILN_REQUIRE_GPU=1 but no usable CUDA device: " << why;
    GTEST_SKIP() << "no CUDA device: " << why;
  }
  bool on_cuda() const { return GetParam() == Device::Kind::cuda; }

  // run() on the CPU and on this test's device: bit-equal outputs (NaN included) on cpu and sim,
  // relative error at most cuda_tol on CUDA (TF32 GEMMs and convolutions need about 1e-2).
  void expect_same_as_cpu(const std::function<std::vector<double>(DeviceRunner&)>& run, double cuda_tol = 1e-5) {
    DeviceRunner ref(Device::Kind::cpu), dev(GetParam());
    const std::vector<double> want = run(ref);
    const std::vector<double> got = run(dev);
    ASSERT_EQ(got.size(), want.size());
    if (on_cuda()) {
      EXPECT_REL_NEAR(got, want, cuda_tol);
      return;
    }
    for (size_t i = 0; i < got.size(); ++i) {
      if (std::memcmp(&got[i], &want[i], sizeof(double)) != 0) {
        ADD_FAILURE() << "output " << i << " differs: got " << got[i] << ", want " << want[i];
        return;
      }
    }
  }
  // expect_same_as_cpu for an op CUDA has no kernel for: there it must refuse with a kiln::Error
  // holding every needle.
  void expect_same_as_cpu_or_cuda_error(const std::function<std::vector<double>(DeviceRunner&)>& run,
                                        const std::vector<std::string>& needles) {
    if (!on_cuda()) return expect_same_as_cpu(run);
    DeviceRunner dev(GetParam());
    expect_error([&] { run(dev); }, needles);
  }
};

}  // namespace kiln::test

// Runs every TEST_P of `suite` (a subclass of kiln::test::DeviceTest) on cpu, sim and cuda.
#define KILN_DEVICE_TEST_SUITE(suite)                                                                    \
  INSTANTIATE_TEST_SUITE_P(                                                                              \
      Devices, suite,                                                                                    \
      testing::Values(::kiln::Device::Kind::cpu, ::kiln::Device::Kind::sim, ::kiln::Device::Kind::cuda), \
      ::kiln::test::device_kind_name)
