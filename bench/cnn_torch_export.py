#!/usr/bin/env python3
"""The Fashion-MNIST CNN (examples/fashion_mnist/cnn.pbtxt) built in PyTorch with Kiln's trained
weights copied in, exported by torch.onnx.export: the peer that bench/cnn_vs_onnxruntime.py runs
under ONNX Runtime (issue 16 item 4). Runs in the bench venv (torch, onnx; scripts/python_env.sh
bench); the weights come from the initializers of Kiln's own ONNX export of the same version.

usage: .venv/bench/bin/python bench/cnn_torch_export.py KILN_MODEL.onnx OUT.onnx
"""
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper


def build(w, eps):
    """Kiln's layers in PyTorch: SAME-padded 3x3 convolutions without bias, batch norm, ReLU, 2x2
    max pooling, dense 256 ReLU, dropout, dense 10, softmax. NCHW, as PyTorch convolves."""
    conv1 = torch.nn.Conv2d(1, 32, 3, padding=1, bias=False)
    conv2 = torch.nn.Conv2d(32, 64, 3, padding=1, bias=False)
    bn1, bn2 = torch.nn.BatchNorm2d(32, eps=eps["bn1"]), torch.nn.BatchNorm2d(64, eps=eps["bn2"])
    fc1, logits = torch.nn.Linear(3136, 256), torch.nn.Linear(256, 10)
    t = lambda name: torch.from_numpy(np.array(w[name]))
    with torch.no_grad():
        conv1.weight.copy_(t("conv1/kernel"))  # Kiln's ONNX export already holds OIHW kernels
        conv2.weight.copy_(t("conv2/kernel"))
        for bn, name in ((bn1, "bn1"), (bn2, "bn2")):
            bn.weight.copy_(t(f"{name}/gamma"))
            bn.bias.copy_(t(f"{name}/beta"))
            bn.running_mean.copy_(t(f"{name}/moving_mean"))
            bn.running_var.copy_(t(f"{name}/moving_variance"))
        # Kiln flattens NHWC (h, w, c order), PyTorch NCHW (c, h, w): permute fc1's input rows.
        k = w["fc1/kernel"].reshape(7, 7, 64, 256).transpose(2, 0, 1, 3).reshape(3136, 256)
        fc1.weight.copy_(torch.from_numpy(np.ascontiguousarray(k.T)))
        fc1.bias.copy_(t("fc1/bias"))
        logits.weight.copy_(torch.from_numpy(np.ascontiguousarray(w["logits/kernel"].T)))
        logits.bias.copy_(t("logits/bias"))
    return torch.nn.Sequential(conv1, bn1, torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               conv2, bn2, torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Flatten(), fc1, torch.nn.ReLU(), torch.nn.Dropout(0.4), logits,
                               torch.nn.Softmax(dim=1)).eval()


def main():
    src, out = sys.argv[1], sys.argv[2]
    kiln_onnx = onnx.load(src)
    w = {i.name: numpy_helper.to_array(i) for i in kiln_onnx.graph.initializer}
    eps = {n.output[0]: next(a.f for a in n.attribute if a.name == "epsilon")
           for n in kiln_onnx.graph.node if n.op_type == "BatchNormalization"}
    model = build(w, eps)
    torch.onnx.export(model, (torch.zeros(1, 1, 28, 28),), out, input_names=["image"],
                      output_names=["probabilities"], dynamic_axes={"image": {0: "batch"}}, opset_version=17,
                      dynamo=False)


if __name__ == "__main__":
    main()
