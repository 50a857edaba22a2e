// Response bodies: class names beside the ids, and the key only for requests that sent keys.
#include <gtest/gtest.h>

#include "runtime/responses.h"

namespace kiln::runtime {
namespace {

Signature classifier_signature() {
  Signature sig;
  auto add = [&](const char* name, const char* dtype, int64_t width) {
    SignatureOutput* o = sig.add_outputs();
    o->set_name(name);
    o->set_dtype(dtype);
    o->add_shape(width);
  };
  add("probabilities", "FP32", 2);
  add("class_ids", "INT64", 1);
  add("classes", "BYTES", 1);
  add("key", "BYTES", 1);
  sig.set_key("key");
  return sig;
}

// Two rows: class 1 ("cat") then class 0 ("dog").
Predictions two_rows() {
  Predictions p;
  p.rows = 2;
  p.output_width = {2, 1, 1};
  p.output_is_int = {false, true, false};
  p.output_is_string = {false, false, true};
  p.float_outputs = {{0.25f, 0.75f, 0.5f, 0.5f}, {}, {}};
  p.int_outputs = {{}, {1, 0}, {}};
  p.string_outputs = {{}, {}, {"cat", "dog"}};
  return p;
}

TEST(Responses, ClassNamesBesideTheIdsAndKeysWhenSent) {
  const Signature sig = classifier_signature();
  EXPECT_EQ(tf_predict_response(sig, two_rows(), {"a", "b"}, false),
            R"J({"predictions":[{"probabilities":[0.25,0.75],"class_ids":[1],"classes":["cat"],"key":"a"},)J"
            R"J({"probabilities":[0.5,0.5],"class_ids":[0],"classes":["dog"],"key":"b"}]})J");
  EXPECT_EQ(tf_predict_response(sig, two_rows(), {}, false),
            R"J({"predictions":[{"probabilities":[0.25,0.75],"class_ids":[1],"classes":["cat"]},)J"
            R"J({"probabilities":[0.5,0.5],"class_ids":[0],"classes":["dog"]}]})J");
  EXPECT_EQ(tf_predict_response(sig, two_rows(), {}, true),
            R"J({"outputs":{"probabilities":[[0.25,0.75],[0.5,0.5]],"class_ids":[[1],[0]],"classes":[["cat"],["dog"]]}})J");
  EXPECT_EQ(jsonl_predictions(sig, two_rows(), {}),
            "{\"probabilities\":[0.25,0.75],\"class_ids\":[1],\"classes\":[\"cat\"]}\n"
            "{\"probabilities\":[0.5,0.5],\"class_ids\":[0],\"classes\":[\"dog\"]}\n");
}

TEST(Responses, ARegressionWithoutKeysAnswersBareValues) {
  Signature sig;
  for (const char* name : {"predictions", "key"}) {
    SignatureOutput* o = sig.add_outputs();
    o->set_name(name);
    o->set_dtype(name[0] == 'k' ? "BYTES" : "FP32");
    o->add_shape(1);
  }
  Predictions p;
  p.rows = 1;
  p.output_width = {1};
  p.output_is_int = {false};
  p.output_is_string = {false};
  p.float_outputs = {{7.5f}};
  p.int_outputs = {{}};
  p.string_outputs = {{}};
  EXPECT_EQ(tf_predict_response(sig, p, {"b1"}, false), R"J({"predictions":[{"predictions":[7.5],"key":"b1"}]})J");
  EXPECT_EQ(tf_predict_response(sig, p, {}, false), R"J({"predictions":[[7.5]]})J");
}

}  // namespace
}  // namespace kiln::runtime
