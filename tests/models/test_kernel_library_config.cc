// models/kernel_library_config.h: a config's kernel_library and overrides reach the process, and a
// bad entry is an error naming its field that changes nothing.
#include "models/kernel_library_config.h"

#include <gtest/gtest.h>
#include <google/protobuf/text_format.h>

#include <string>

#include "core/error.h"
#include "kernels/kernel_library.h"
#include "proto/serve_config.pb.h"
#include "proto/train_config.pb.h"

namespace kiln {
namespace {

using kernels::KernelLibrary;

class KernelLibraryConfig : public testing::Test {
 protected:
  void TearDown() override { kernels::reset_kernel_library(); }
};

TrainConfig parse(const std::string& text) {
  TrainConfig c;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &c)) << text;
  return c;
}

void expect_apply_error(const TrainConfig& c, const std::string& needle) {
  try {
    models::apply_kernel_library(c.kernel_library(), c.kernel_library_overrides());
    ADD_FAILURE() << "no kiln::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST_F(KernelLibraryConfig, KilnUnlessConfigured) {
  const TrainConfig c;
  EXPECT_EQ(c.kernel_library(), KernelChoice::KILN);
  models::apply_kernel_library(c.kernel_library(), c.kernel_library_overrides());
  for (std::string_view op : kernels::kernel_op_families()) EXPECT_EQ(kernels::kernel_library(op), KernelLibrary::kiln);
}

TEST_F(KernelLibraryConfig, GlobalAndPerOp) {
  const TrainConfig c = parse(R"(kernel_library: VENDOR
                                 kernel_library_overrides { op: "conv2d" library: KILN })");
  models::apply_kernel_library(c.kernel_library(), c.kernel_library_overrides());
  EXPECT_EQ(kernels::kernel_library("gemm"), KernelLibrary::vendor);
  EXPECT_EQ(kernels::kernel_library("batch_norm"), KernelLibrary::vendor);
  EXPECT_EQ(kernels::kernel_library("conv2d"), KernelLibrary::kiln);

  // Applying another config replaces the whole choice, overrides included.
  ServeConfig serve;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(R"(kernel_library_overrides { op: "gemm" library: VENDOR })",
                                                            &serve));
  models::apply_kernel_library(serve.kernel_library(), serve.kernel_library_overrides());
  EXPECT_EQ(kernels::kernel_library("gemm"), KernelLibrary::vendor);
  EXPECT_EQ(kernels::kernel_library("conv2d"), KernelLibrary::kiln);
  EXPECT_EQ(kernels::kernel_library("batch_norm"), KernelLibrary::kiln);
}

TEST_F(KernelLibraryConfig, EmbeddingTakesVendorLikeEveryFamily) {
  // Embedding has reference kernels behind VENDOR now (kernels/cuda/reference.h).
  const TrainConfig c = parse(R"(kernel_library_overrides { op: "embedding" library: VENDOR })");
  models::apply_kernel_library(c.kernel_library(), c.kernel_library_overrides());
  EXPECT_EQ(kernels::kernel_library("embedding"), KernelLibrary::vendor);
  EXPECT_EQ(kernels::kernel_library("gemm"), KernelLibrary::kiln);
}

TEST_F(KernelLibraryConfig, BadEntriesNameTheFieldAndChangeNothing) {
  expect_apply_error(parse(R"(kernel_library: VENDOR
                              kernel_library_overrides { op: "gemm" library: KILN }
                              kernel_library_overrides { op: "gem" library: VENDOR })"),
                     "kernel_library_overrides[1].op: unknown kernel op family 'gem': the families are activation");
  EXPECT_EQ(kernels::kernel_library("batch_norm"), KernelLibrary::kiln);
  expect_apply_error(parse(R"(kernel_library_overrides { library: VENDOR })"), "kernel_library_overrides[0].op: missing");
  expect_apply_error(parse(R"(kernel_library_overrides { op: "gemm" }
                              kernel_library_overrides { op: "gemm" library: VENDOR })"),
                     "kernel_library_overrides[1].op: 'gemm' is overridden twice");
  EXPECT_EQ(kernels::kernel_library("gemm"), KernelLibrary::kiln);
}

}  // namespace
}  // namespace kiln
