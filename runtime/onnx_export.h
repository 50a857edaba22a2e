#pragma once
// The model of a servable as an ONNX file (docs/serving.md, "ONNX"): the layers and the head's
// output transform (sigmoid, softmax), not the Transformer — ONNX Runtime, Triton or TensorRT
// run it on inputs Kiln transformed (`kiln transform --format npy`, or the same code in a
// client). Inputs: "dense" [N, width] float and one int64 [N] per embedding feature (one id per
// example; multi-valued features are refused), or the image [N, H, W, C] float as the model sees
// it (scaled). Outputs are the servable's: "predictions" (regression), "logistic" (binary) or
// "probabilities" (multiclass), and "class_ids" for classifiers. Opset 13; images run NCHW
// inside (transposed at the input, back before a flatten), so the results match Kiln's NHWC ones.
#include <string>

#include "io/checkpoint_file.h"
#include "proto/servable.pb.h"

namespace kiln::runtime {

// Writes `path` atomically; the model is checked with ONNX's own checker first. Errors name the
// layer or feature that ONNX export does not support.
void write_onnx(const ServableManifest& manifest, const io::CheckpointFile& weights, const std::string& path);

}  // namespace kiln::runtime
