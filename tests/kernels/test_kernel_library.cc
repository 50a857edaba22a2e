// kernels/kernel_library.h: the process-wide choice, per-family overrides and unknown names.
#include "kernels/kernel_library.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace kiln {
namespace {

using kernels::KernelLibrary;

class KernelLibraryTest : public testing::Test {
 protected:
  void TearDown() override { kernels::reset_kernel_library(); }
};

TEST_F(KernelLibraryTest, KilnByDefaultForEveryFamily) {
  ASSERT_EQ(kernels::kernel_op_families().size(), 10u);
  for (std::string_view op : kernels::kernel_op_families()) EXPECT_EQ(kernels::kernel_library(op), KernelLibrary::kiln);
}

TEST_F(KernelLibraryTest, GlobalDefaultAndPerFamilyOverride) {
  kernels::set_kernel_library(KernelLibrary::vendor);
  kernels::set_kernel_library("conv2d", KernelLibrary::kiln);
  EXPECT_EQ(kernels::kernel_library("gemm"), KernelLibrary::vendor);
  EXPECT_EQ(kernels::kernel_library("conv2d"), KernelLibrary::kiln);
  EXPECT_TRUE(kernels::use_vendor("batch_norm"));
  // The override outlives a change of the default.
  kernels::set_kernel_library(KernelLibrary::kiln);
  kernels::set_kernel_library("gemm", KernelLibrary::vendor);
  EXPECT_EQ(kernels::kernel_library("gemm"), KernelLibrary::vendor);
  EXPECT_EQ(kernels::kernel_library("batch_norm"), KernelLibrary::kiln);
  kernels::reset_kernel_library();
  EXPECT_EQ(kernels::kernel_library("gemm"), KernelLibrary::kiln);
}

TEST_F(KernelLibraryTest, UnknownFamilyListsTheFamilies) {
  for (auto f : {+[] { kernels::kernel_library("gem"); }, +[] { kernels::set_kernel_library("conv", KernelLibrary::vendor); },
                 +[] { kernels::use_vendor("matmul"); }}) {
    try {
      f();
      ADD_FAILURE() << "no kiln::Error";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("unknown kernel op family"), std::string::npos) << what;
      EXPECT_NE(what.find("activation, batch_norm, conv2d, dropout, embedding, gemm, loss, optimizer, pooling, reduce"),
                std::string::npos)
          << what;
    }
  }
}

TEST_F(KernelLibraryTest, LibraryNames) {
  EXPECT_STREQ(kernels::kernel_library_name(KernelLibrary::vendor), "vendor");
  EXPECT_STREQ(kernels::kernel_library_name(KernelLibrary::kiln), "kiln");
}

}  // namespace
}  // namespace kiln
