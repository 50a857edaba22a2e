"""Peers for the GPU benchmarks, measured with PyTorch on the same GPU in the same gpu_check run:
cuDNN convolutions (channels_last = NHWC; forward, data grad, weight grad) for the layers of
bench/gpu_conv.cu, and torch.matmul (cuBLAS) for reference. Prints RESULT lines like the C++
benchmarks. Usage: python3 bench/gpu_peers.py"""
import sys

try:
    import torch
except ImportError:
    print("gpu_peers: PyTorch is not installed; no cuDNN peer")
    sys.exit(0)

# Keep in step with bench/gpu_conv.cu: name, n, hw, c_in, c_out, k, stride, pad.
CONV_LAYERS = [
    ("fmnist_c1", 256, 28, 1, 32, 3, 1, 1), ("fmnist_c2", 256, 14, 32, 64, 3, 1, 1),
    ("resnet_56", 32, 56, 64, 64, 3, 1, 1), ("resnet_28", 32, 28, 128, 128, 3, 1, 1),
    ("resnet_14", 32, 14, 256, 256, 3, 1, 1), ("resnet_7", 32, 7, 512, 512, 3, 1, 1),
]


def median_ms(fn, warmup=3, reps=15):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def main():
    if not torch.cuda.is_available():
        print("gpu_peers: no CUDA device visible to PyTorch")
        return
    torch.backends.cudnn.benchmark = True
    print(f"gpu_peers: torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name()}")
    for dtype, tname in ((torch.bfloat16, "bf16"), (torch.float32, "tf32")):
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
        for name, n, hw, ci, co, k, stride, pad in CONV_LAYERS:
            x = (torch.rand(n, ci, hw, hw, device="cuda", dtype=dtype) - 0.5).to(memory_format=torch.channels_last)
            w = (torch.rand(co, ci, k, k, device="cuda", dtype=dtype) - 0.5).to(memory_format=torch.channels_last)
            x.requires_grad_(True)
            w.requires_grad_(True)
            y = torch.nn.functional.conv2d(x, w, stride=stride, padding=pad)
            dy = torch.rand_like(y) - 0.5
            fwd = median_ms(lambda: torch.nn.functional.conv2d(x, w, stride=stride, padding=pad))
            dgrad = median_ms(lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, stride=stride, padding=pad))
            wgrad = median_ms(lambda: torch.nn.grad.conv2d_weight(x, w.shape, dy, stride=stride, padding=pad))
            print(f"RESULT bench=conv_cudnn layer={name} type={tname} fwd_ms={fwd:.4f} dgrad_ms={dgrad:.4f} wgrad_ms={wgrad:.4f}")
    for sq in (4096, 8192):
        a = torch.rand(sq, sq, device="cuda", dtype=torch.bfloat16) - 0.5
        b = torch.rand(sq, sq, device="cuda", dtype=torch.bfloat16) - 0.5
        ms = median_ms(lambda: a @ b)
        print(f"RESULT bench=torch_matmul type=bf16 m={sq} tflops={2 * sq ** 3 / ms / 1e9:.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
