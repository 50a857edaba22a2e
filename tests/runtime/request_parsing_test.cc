// TensorFlow Serving and KServe v2 request bodies into raw rows, and every way a body can be bad.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "core/error.h"
#include "runtime/json_request.h"
#include "runtime/kserve_request.h"
#include "runtime/tensor_request_scan.h"

namespace kiln::runtime {
namespace {

InputSchema lab_schema() {
  InputSchema s;
  s.columns = {{"is_male", true, true, false, "", false},
               {"mother_age", false, true, false, "", false},
               {"plurality", true, true, false, "", false},
               {"gestation_weeks", false, false, false, "", false},  // DROP_ROW: not nullable
               {"tags", true, true, true, "|", false},
               {"key", true, true, false, "", true}};
  s.label = "weight_pounds";
  s.na_values = {"", "NA"};
  return s;
}

ParsedRequest parse(std::string_view body, TfApi api = TfApi::kPredict, RequestLimits limits = {}) {
  ParsedRequest p;
  parse_tf_request(body, api, lab_schema(), limits, p);
  return p;
}

std::string error_of(std::string_view body, TfApi api = TfApi::kPredict, RequestLimits limits = {}) {
  try {
    parse(body, api, limits);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(TfRequest, LabRowFormatWithKey) {
  ParsedRequest p = parse(R"J({"instances":[{"key":"b1","is_male":"True","mother_age":26.0,"plurality":"Single(1)",)J"
                          R"("gestation_weeks":39,"tags":["a","b"]}]})");
  ASSERT_EQ(p.count, 1);
  EXPECT_FALSE(p.columnar);
  EXPECT_EQ(p.rows.field(0, 0), "True");
  EXPECT_EQ(p.rows.field(0, 1), "26");  // the double 26.0 as the text a CSV would hold
  EXPECT_EQ(p.rows.field(0, 2), "Single(1)");
  EXPECT_EQ(p.rows.field(0, 3), "39");
  EXPECT_EQ(p.rows.field(0, 4), "a|b");  // a multi-valued array joined with the delimiter
  EXPECT_EQ(p.rows.field(0, 5), "b1");
  EXPECT_FALSE(p.rows.is_na(0, 1));
  EXPECT_EQ(p.rows.where(0, 1), "instances[0].mother_age");
}

TEST(TfRequest, NumbersKeepTheirExactValue) {
  ParsedRequest p = parse(R"({"instances":[{"is_male":"F","mother_age":0.1,"plurality":7,"gestation_weeks":1e300,)"
                          R"("tags":"x"}]})");
  EXPECT_EQ(std::stod(std::string(p.rows.field(0, 1))), 0.1);
  EXPECT_EQ(std::stod(std::string(p.rows.field(0, 3))), 1e300);
  EXPECT_EQ(p.rows.field(0, 2), "7");  // a number for a categorical column becomes its text
}

TEST(TfRequest, NullAndNaSpellingsAreMissing) {
  ParsedRequest p = parse(R"({"instances":[{"is_male":"NA","mother_age":null,"plurality":"","gestation_weeks":40,)"
                          R"("tags":null}]})");
  EXPECT_TRUE(p.rows.is_na(0, 0));
  EXPECT_TRUE(p.rows.is_na(0, 1));
  EXPECT_TRUE(p.rows.is_na(0, 2));
  EXPECT_FALSE(p.rows.is_na(0, 3));
  EXPECT_TRUE(p.rows.is_na(0, 5));  // the optional key, absent
}

TEST(TfRequest, NaSpellingsAreMissingForNumericFeaturesToo) {
  ParsedRequest p = parse(R"({"instances":[{"is_male":"T","mother_age":"NA","plurality":"x","gestation_weeks":40,)"
                          R"("tags":"t"},{"is_male":"T","mother_age":"","plurality":"x","gestation_weeks":41,"tags":"t"}]})");
  EXPECT_TRUE(p.rows.is_na(0, 1));
  EXPECT_TRUE(p.rows.is_na(1, 1));
  // A required feature (DROP_ROW) may not be missing, however it is spelled.
  EXPECT_NE(error_of(R"({"instances":[{"is_male":"T","mother_age":1,"plurality":"x","gestation_weeks":"NA","tags":"t"}]})")
                .find("instances[0].gestation_weeks: 'NA' means missing, but this feature is required"),
            std::string::npos);
}

TEST(TfRequest, ColumnarFormat) {
  ParsedRequest p = parse(R"({"inputs":{"is_male":["True","False"],"mother_age":[26,31.5],"plurality":["a","b"],)"
                          R"("gestation_weeks":[39,40],"tags":["x","y"],"weight_pounds":[1,2]}})");
  ASSERT_EQ(p.count, 2);
  EXPECT_TRUE(p.columnar);
  EXPECT_EQ(p.rows.field(1, 1), "31.5");
  EXPECT_EQ(p.rows.where(1, 1), "inputs[1].mother_age");
}

TEST(TfRequest, ClassifyExamplesWithContext) {
  ParsedRequest p = parse(R"J({"context":{"plurality":"Twins(2)","tags":"t"},"examples":[)J"
                          R"({"is_male":"True","mother_age":20,"gestation_weeks":38},)"
                          R"J({"is_male":"False","mother_age":30,"gestation_weeks":41,"plurality":"Single(1)"}]})J",
                          TfApi::kClassify);
  ASSERT_EQ(p.count, 2);
  EXPECT_EQ(p.rows.field(0, 2), "Twins(2)");
  EXPECT_EQ(p.rows.field(1, 2), "Single(1)");  // the example's own value wins over the context
}

TEST(TfRequest, BadBodiesNameTheProblem) {
  const std::string ok_row = R"("is_male":"True","mother_age":26,"plurality":"x","gestation_weeks":39,"tags":"t")";
  EXPECT_NE(error_of("{\"instances\":[").find("malformed JSON"), std::string::npos);
  EXPECT_NE(error_of("[1,2]").find("must be a JSON object"), std::string::npos);
  EXPECT_NE(error_of(R"({"instances":[{"is_male":"True"}]})").find("instances[0].mother_age: missing"),
            std::string::npos);
  // Columns the model does not take are ignored (one policy with kiln predict's CSV input).
  EXPECT_EQ(error_of(R"({"instances":[{)" + ok_row + R"(,"colour":"red"}]})"), "no error");
  // A client encoder's NaN or Infinity (invalid JSON) is named as such.
  EXPECT_NE(error_of(R"({"instances":[{"is_male":"True","mother_age":NaN}]})").find("NaN is not valid JSON"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"instances":[{"is_male":"NaN","mother_age":-Infinity}]})").find("-Infinity is not valid JSON"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"instances":[{"is_male":"True","mother_age":"26","plurality":"x","gestation_weeks":39,)"
                     R"("tags":"t"}]})")
                .find("instances[0].mother_age: expected a number, got a string"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"instances":[{"is_male":true,"mother_age":26,"plurality":"x","gestation_weeks":39,"tags":"t"}]})")
                .find("expected a string"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"instances":[{"is_male":"T","mother_age":26,"plurality":"x","gestation_weeks":null,"tags":"t"}]})")
                .find("required"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"instances":[{"is_male":"T","mother_age":NaN,"plurality":"x","gestation_weeks":1,"tags":"t"}]})")
                .find("malformed JSON"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"instances":[{"is_male":"T","mother_age":1e999,"plurality":"x","gestation_weeks":1,"tags":"t"}]})")
                .find("malformed JSON"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"instances":[{)" + ok_row + "," + ok_row.substr(0, 16) + "}]}").find("given twice"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"instances":[],"inputs":{}})").find("exactly one"), std::string::npos);
  EXPECT_NE(error_of(R"({"instances":[]})").find("empty"), std::string::npos);
  EXPECT_NE(error_of(R"({"instances":[1]})").find("expected an object"), std::string::npos);
  EXPECT_NE(error_of(R"({"instancez":[]})").find("unknown request field"), std::string::npos);
  EXPECT_NE(error_of(R"({"inputs":{"is_male":["a"],"mother_age":[1,2]}})").find("has 2 values"), std::string::npos);
  EXPECT_NE(error_of(R"({"instances":[{}]})", TfApi::kClassify).find("needs \"examples\""), std::string::npos);
}

TEST(TfRequest, LimitsOnSizeDepthAndEncoding) {
  RequestLimits limits;
  limits.max_rows = 3;
  std::string row = R"({"is_male":"T","mother_age":1,"plurality":"x","gestation_weeks":1,"tags":"t"})";
  std::string four = "{\"instances\":[" + row + "," + row + "," + row + "," + row + "]}";
  EXPECT_NE(error_of(four, TfApi::kPredict, limits).find("the limit is 3"), std::string::npos);
  std::string deep = "{\"instances\":" + std::string(200, '[') + std::string(200, ']') + "}";
  EXPECT_NE(error_of(deep).find("nested deeper than 64"), std::string::npos);
  std::string bad_utf8 = R"({"instances":[{"is_male":")" + std::string("\xff\xfe") + R"("}]})";
  EXPECT_NE(error_of(bad_utf8).find("UTF-8"), std::string::npos);
}

TEST(TfRequest, TensorInstances) {
  InputSchema s;
  s.columns = {{"image", false, false, false, "", false}};
  s.tensor_elements = 4;
  ParsedRequest p;
  parse_tf_request(R"({"instances":[[[1,2],[3,4]],{"image":[5,6,7,8]}]})", TfApi::kPredict, s, {}, p);
  EXPECT_EQ(p.count, 2);
  EXPECT_EQ(p.tensor, (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}));
  ParsedRequest q;
  EXPECT_THROW(parse_tf_request(R"({"instances":[[1,2,3]]})", TfApi::kPredict, s, {}, q), Error);
  ParsedRequest r;
  EXPECT_THROW(parse_tf_request(R"({"instances":[[1,2,3,1e39]]})", TfApi::kPredict, s, {}, r), Error);
}

// The plain image request is read without the DOM (runtime/tensor_request_scan.h): the same
// floats, bit for bit, as the general parser gives for the same body with one more key (which
// sends it the general way); anything unusual falls back and gets the general parser's answer.
TEST(TfRequest, PlainTensorInstancesReadAsTheGeneralParserReadsThem) {
  InputSchema s;
  s.columns = {{"image", false, false, false, "", false}};
  s.tensor_elements = 6;
  std::mt19937_64 rng(7);
  int scanned_rounds = 0;
  const char* specials[] = {"0", "-1", "255", "0.1", "-0.0", "1e-45", "3.4028235e38", "1E5", "2.5e+3", "-7.25E-2",
                            "123456789012345678", "-123456789012345678", "0.30000000000000004", "1.00000005960464477539",
                            "4.9e-324", "9007199254740993", "1e-400"};
  for (int round = 0; round < 300; ++round) {
    std::string inner;
    const int rows = 1 + static_cast<int>(rng() % 3);
    for (int r = 0; r < rows; ++r) {
      inner += r ? ", " : "";
      // Flat or nested as [[a,b,c],[d,e,f]], with spaces here and there.
      const bool nested = rng() % 2;
      inner += nested ? "[[" : "[";
      for (int i = 0; i < 6; ++i) {
        if (i) inner += (nested && i == 3) ? "], [" : (rng() % 2 ? "," : " ,\n ");
        const int kind = static_cast<int>(rng() % 4);
        if (kind == 0) {
          inner += specials[rng() % (sizeof specials / sizeof *specials)];
        } else if (kind == 1) {
          // Integers of every length from 1 to 16 digits (the scanner reads runs of up to 7
          // digits eight bytes at a time, longer ones digit by digit), signed or not.
          const int digits = 1 + static_cast<int>(rng() % 16);
          inner += rng() % 4 == 0 ? "-" : "";
          inner += static_cast<char>('1' + rng() % 9);
          for (int k = 1; k < digits; ++k) inner += static_cast<char>('0' + rng() % 10);
        } else {
          char buf[64];
          std::uniform_real_distribution<double> u(-1e6, 1e6);
          std::snprintf(buf, sizeof buf, "%.*g", 1 + static_cast<int>(rng() % 17), u(rng) * std::pow(10.0, static_cast<int>(rng() % 40) - 20));
          inner += buf;
        }
      }
      inner += nested ? "]]" : "]";
    }
    const std::string plain = " {\"instances\": [" + inner + "]}\n";
    const std::string general = "{\"signature_name\": \"serving_default\", \"instances\": [" + inner + "]}";
    ParsedRequest fast, slow;
    std::string fast_error, slow_error;
    try {
      parse_tf_request(plain, TfApi::kPredict, s, {}, fast);
    } catch (const Error& e) {
      fast_error = e.what();
    }
    try {
      parse_tf_request(general, TfApi::kPredict, s, {}, slow);
    } catch (const Error& e) {
      slow_error = e.what();
    }
    ASSERT_EQ(fast_error, slow_error) << plain;
    // Most bodies must take the scanner, which then gives exactly these floats.
    std::vector<float> scanned;
    int64_t scanned_count = 0;
    if (scan_plain_tensor_instances(plain, 6, {}, scanned, scanned_count)) {
      ++scanned_rounds;
      ASSERT_EQ(scanned_count, slow.count) << plain;
      ASSERT_EQ(scanned.size(), slow.tensor.size()) << plain;
      ASSERT_EQ(std::memcmp(scanned.data(), slow.tensor.data(), scanned.size() * sizeof(float)), 0) << plain;
    }
    ASSERT_EQ(fast.count, slow.count) << plain;
    ASSERT_EQ(fast.tensor.size(), slow.tensor.size()) << plain;
    for (size_t i = 0; i < fast.tensor.size(); ++i)
      ASSERT_EQ(std::memcmp(&fast.tensor[i], &slow.tensor[i], sizeof(float)), 0)
          << plain << " value " << i << ": " << fast.tensor[i] << " vs " << slow.tensor[i];
  }
  EXPECT_GT(scanned_rounds, 200);
  // Unusual bodies take the general way and get its errors.
  InputSchema one = s;
  one.tensor_elements = 2;
  for (const char* bad : {R"({"instances":[[01,2]]})", R"({"instances":[[1.,2]]})", R"({"instances":[[1,2]]} x)",
                          R"({"instances":[[1,2],]})", R"({"instances":[[1,2,3]]})", R"({"instances":[]})",
                          R"({"instances":[[1e39,2]]})", R"({"instances":[["1",2]]})"}) {
    ParsedRequest p;
    EXPECT_THROW(parse_tf_request(bad, TfApi::kPredict, one, {}, p), Error) << bad;
  }
  ParsedRequest neg;
  parse_tf_request(R"({"instances":[[-0, 18446744073709551615]]})", TfApi::kPredict, one, {}, neg);
  EXPECT_EQ(neg.count, 1);
  EXPECT_EQ(neg.tensor[1], 18446744073709551615.0f);
}

TEST(JsonLines, ErrorsNameTheLine) {
  ParsedRequest p;
  std::string text = R"({"is_male":"T","mother_age":1,"plurality":"x","gestation_weeks":1,"tags":"t"})"
                     "\n\n"
                     R"({"is_male":"T","mother_age":"x","plurality":"x","gestation_weeks":1,"tags":"t"})"
                     "\n";
  try {
    parse_json_lines(text, "rows.jsonl", lab_schema(), {}, p);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rows.jsonl:3: "), std::string::npos) << e.what();
  }
}

// ---- KServe v2 ----

std::string le32(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string le_f32(float v) { return std::string(reinterpret_cast<const char*>(&v), 4); }

KserveRequest parse_v2(const std::string& body, size_t json_size = std::string::npos) {
  KserveRequest r;
  parse_kserve_request(body, json_size == std::string::npos ? body.size() : json_size, lab_schema(), {}, r);
  return r;
}

std::string v2_error(const std::string& body, size_t json_size = std::string::npos) {
  try {
    parse_v2(body, json_size);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

const char* kV2Rest =
    R"({"name":"plurality","shape":[2,1],"datatype":"BYTES","data":["a","b"]},)"
    R"({"name":"gestation_weeks","shape":[2],"datatype":"INT32","data":[39,40]},)"
    R"({"name":"tags","shape":[2,1],"datatype":"BYTES","data":["x","y"]})";

TEST(KserveRequest, JsonTensors) {
  std::string body = std::string(R"({"id":"r1","inputs":[{"name":"is_male","shape":[2,1],"datatype":"BYTES","data":["True","NA"]},)") +
                     R"({"name":"mother_age","shape":[2,1],"datatype":"FP64","data":[[26.5],[31]]},)" + kV2Rest +
                     R"(],"outputs":[{"name":"predictions","parameters":{"binary_data":true}}]})";
  KserveRequest r = parse_v2(body);
  EXPECT_EQ(r.response.id, "r1");
  ASSERT_EQ(r.parsed.count, 2);
  EXPECT_EQ(r.parsed.rows.field(0, 0), "True");
  EXPECT_TRUE(r.parsed.rows.is_na(1, 0));
  EXPECT_EQ(r.parsed.rows.field(0, 1), "26.5");
  EXPECT_EQ(r.parsed.rows.field(1, 3), "40");
  ASSERT_EQ(r.response.outputs.size(), 1u);
  EXPECT_TRUE(r.response.outputs[0].binary);
}

TEST(KserveRequest, BinaryTensorData) {
  std::string bytes = le32(4) + "True" + le32(5) + "False";
  std::string floats = le_f32(26.0f) + le_f32(0.1f);
  std::string json = R"({"inputs":[{"name":"is_male","shape":[2,1],"datatype":"BYTES","parameters":{"binary_data_size":)" +
                     std::to_string(bytes.size()) + R"(}},{"name":"mother_age","shape":[2,1],"datatype":"FP32",)" +
                     R"("parameters":{"binary_data_size":8}},)" + kV2Rest + R"(],"parameters":{"binary_data_output":true}})";
  KserveRequest r = parse_v2(json + bytes + floats, json.size());
  EXPECT_TRUE(r.response.binary_output);
  EXPECT_EQ(r.parsed.rows.field(1, 0), "False");
  EXPECT_EQ(r.parsed.rows.field(1, 1), "0.1");  // the float's shortest text
  // Bad binary data: truncated, overrunning, unclaimed, non-finite.
  EXPECT_NE(v2_error(json + bytes + floats.substr(0, 4), json.size()).find("overruns"), std::string::npos);
  EXPECT_NE(v2_error(json + bytes + floats + "zz", json.size()).find("no input claims"), std::string::npos);
  std::string nan = le_f32(26.0f) + le_f32(std::numeric_limits<float>::quiet_NaN());
  EXPECT_NE(v2_error(json + bytes + nan, json.size()).find("not finite"), std::string::npos);
  EXPECT_NE(v2_error(json, json.size() + 10).find("Inference-Header-Content-Length"), std::string::npos);
}

TEST(KserveRequest, BadTensorsNameTheInput) {
  std::string age = R"({"name":"mother_age","shape":[2,1],"datatype":"FP32","data":[1,2]})";
  std::string male = R"({"name":"is_male","shape":[2,1],"datatype":"BYTES","data":["a","b"]})";
  auto body = [&](const std::string& first) { return "{\"inputs\":[" + first + "," + kV2Rest + "]}"; };
  EXPECT_NE(v2_error(body(male)).find("input 'mother_age' is missing"), std::string::npos);
  EXPECT_NE(v2_error(body(male + R"(,{"name":"mother_age","shape":[2,1],"datatype":"FP32","data":[1]})"))
                .find("data has 1 elements"),
            std::string::npos);
  EXPECT_NE(v2_error(body(male + R"(,{"name":"mother_age","shape":[3,1],"datatype":"FP32","data":[1,2,3]})"))
                .find("other inputs have 2"),
            std::string::npos);
  EXPECT_EQ(v2_error(body(male + "," + age + R"(,{"name":"x","shape":[2],"datatype":"FP32","data":[1,2]})")),
            "no error");  // an input the model does not take is ignored
  EXPECT_NE(v2_error(body(male + R"(,{"name":"mother_age","shape":[2,1],"datatype":"FP16","data":[1,2]})"))
                .find("unsupported datatype 'FP16'"),
            std::string::npos);
  EXPECT_NE(v2_error(body(male + R"(,{"name":"mother_age","shape":[2,1],"datatype":"BYTES","data":["1","2"]})"))
                .find("expected a numeric datatype"),
            std::string::npos);
  EXPECT_NE(v2_error(body(male + R"(,{"name":"mother_age","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]})"))
                .find("elements per example"),
            std::string::npos);
  EXPECT_NE(v2_error(body(male + "," + age + "," + age)).find("given twice"), std::string::npos);
  EXPECT_NE(v2_error("{\"inputs\":[]}").find("inputs is empty"), std::string::npos);
  EXPECT_NE(v2_error("{\"inputs\":[{]}").find("malformed JSON"), std::string::npos);
}

}  // namespace
}  // namespace kiln::runtime
