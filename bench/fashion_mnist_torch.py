"""The Fashion-MNIST MLP and CNN of examples/fashion_mnist/*.pbtxt in PyTorch, with the same
optimizers, for the training benchmarks against PyTorch (CPU and GPU)."""
import gzip

import numpy as np


def read_idx(path, limit=0):
    """An IDX file (gzipped) as a numpy array; the first `limit` items when limit > 0."""
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    array = np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)
    return array[:limit] if limit > 0 else array


def build(model_name, device="cpu"):
    """(network on `device`, optimizer) as examples/fashion_mnist/<model_name>.pbtxt defines them."""
    import torch
    import torch.nn as nn
    if model_name == "mlp":
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                            nn.Linear(256, 10)).to(device)
        return net, torch.optim.Adam(net.parameters(), lr=1e-3)
    net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(7 * 7 * 64, 256), nn.ReLU(), nn.Dropout(0.4),
                        nn.Linear(256, 10)).to(device)
    return net, torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
