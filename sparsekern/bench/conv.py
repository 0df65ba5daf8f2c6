"""Sparse conv2d rows of ``sparsekern bench``, and the MobileNetV1 used by them, by
``bench/test_bench_conv.py`` and by ``examples/sparse_mobilenet.py``.

MobileNetV1 (224x224 input, width 1.0, batch 1, NCHW float32, random weights, batch norm
folded into the biases, ReLU6): a dense 3x3 stride-2 stem conv, 13 depthwise-separable
blocks (depthwise 3x3, dense; pointwise 1x1, magnitude-pruned to ``sparsity``), global
average pooling and the 1024->1000 classifier (a 1x1 layer too, pruned alike).

Baselines, measured in the same run as sparsekern (medians of several samples):

* 1x1 layer: dense numpy ``W @ X`` on the CHW plane (BLAS);
* KxK conv: numpy im2col (one strided copy) + ``W @ cols`` (BLAS);
* network: the same network with every 1x1 layer (and the classifier) dense numpy
  BLAS and the stem conv im2col + BLAS; the depthwise layers run the same dense
  ``sk.conv2d`` kernel in both networks (numpy has no depthwise convolution worth
  timing), so the ratio is what sparsity buys;
* PyTorch's dense ``torch.nn.functional.conv2d`` model, when torch is installed.

Targets (float32, batch 1, one thread): every 1x1 layer at 90% sparsity >= 3x
dense numpy; 3x3 64->64 @56x56 (stride 1, padding 1, 90% sparse) >= 2.5x im2col + BLAS;
the whole network (1x1 layers 90% sparse) >= 2x the dense network and >= 2x PyTorch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

import sparsekern as sk

F32 = np.float32

# MobileNetV1 body: (c_in, c_out, stride of the depthwise conv)
BLOCKS = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1),
          (256, 512, 2)] + [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
# the 1x1 layers the bars name: (c_in, c_out, H = W)
BAR_1X1 = [(64, 128, 112), (128, 128, 56), (256, 256, 28), (512, 512, 14), (1024, 1024, 7)]
BARS = {"1x1": 3.0, "3x3": 2.5, "network": 2.0, "torch": 2.0}


# -------------------------------------------------------------------------- numpy baselines

def im2col(x: np.ndarray, kh: int, kw: int, stride: int, pad: int) -> np.ndarray:
    """x (C, H, W) -> cols (C*kh*kw, H'*W') in torch's weight order (one copy)."""
    c = x.shape[0]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad))) if pad else x
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))
    win = win[:, ::stride, ::stride]                 # (C, H', W', kh, kw)
    ho, wo = win.shape[1], win.shape[2]
    return np.ascontiguousarray(win.transpose(0, 3, 4, 1, 2)).reshape(c * kh * kw, ho * wo)


def dense_conv_im2col(x: np.ndarray, W2: np.ndarray, k: int, stride: int, pad: int,
                      bias=None) -> np.ndarray:
    """Dense conv of one image x (C, H, W) with W2 = W.reshape(C_out, -1): im2col + BLAS."""
    cols = im2col(x, k, k, stride, pad)
    y = W2 @ cols
    if bias is not None:
        y += bias[:, None]
    ho = (x.shape[1] + 2 * pad - k) // stride + 1
    return y.reshape(W2.shape[0], ho, -1)


# -------------------------------------------------------------------------- the network

@dataclass
class Layer:
    name: str
    kind: str                 # stem | dw | pw | fc
    W: np.ndarray             # dense 4-D weight (pruned where the layer is sparse)
    b: np.ndarray
    stride: int = 1
    packed: object = None     # sk.ConvWeight for pw/fc
    W2: np.ndarray = field(default=None, repr=False)   # W.reshape(C_out, -1) for numpy


def mobilenet_v1(sparsity: float = 0.9, seed: int = 0, num_classes: int = 1000) -> list[Layer]:
    """MobileNetV1 layers with random (He-scaled) weights; every 1x1 layer and the
    classifier magnitude-pruned to ``sparsity`` (their dense W holds the same zeros)."""
    rng = np.random.default_rng([seed, 5])

    def w(*shape):
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape, dtype=F32) * np.sqrt(2.0 / fan_in)).astype(F32)

    def bias(c):
        return (0.01 * rng.standard_normal(c, dtype=F32)).astype(F32)

    layers = [Layer("conv1 3x3/2 3->32", "stem", w(32, 3, 3, 3), bias(32), 2)]
    for i, (ci, co, s) in enumerate(BLOCKS, 1):
        layers.append(Layer(f"dw{i} 3x3/{s} {ci}", "dw", w(ci, 1, 3, 3), bias(ci), s))
        layers.append(Layer(f"pw{i} 1x1 {ci}->{co}", "pw", w(co, ci, 1, 1), bias(co)))
    layers.append(Layer(f"fc 1024->{num_classes}", "fc", w(num_classes, 1024, 1, 1),
                        bias(num_classes)))
    for L in layers:
        if L.kind in ("pw", "fc"):
            L.packed = sk.pack(L.W, "unstructured", sparsity=sparsity)
            L.W = L.packed.to_dense()
        L.W2 = np.ascontiguousarray(L.W.reshape(L.W.shape[0], -1))
    return layers


def _relu6(y):
    return np.clip(y, 0, 6, out=y)


def forward_sparse(x: np.ndarray, layers: list[Layer], times: list | None = None) -> np.ndarray:
    """x (1, 3, 224, 224) -> logits (1000,), every layer through sk.conv2d."""
    for L in layers:
        t = time.perf_counter()
        if L.kind == "stem":
            x = _relu6(sk.conv2d(x, L.W, L.b, stride=2, padding=1))
        elif L.kind == "dw":
            x = _relu6(sk.conv2d(x, L.W, L.b, stride=L.stride, padding=1, groups=x.shape[1]))
        elif L.kind == "pw":
            x = _relu6(sk.conv2d(x, L.packed, L.b))
        else:
            x = sk.conv2d(x.mean(axis=(2, 3), keepdims=True, dtype=F32), L.packed, L.b)
        if times is not None:
            times.append(time.perf_counter() - t)
    return x.reshape(-1)


def forward_dense(x: np.ndarray, layers: list[Layer], times: list | None = None) -> np.ndarray:
    """The same network dense: numpy BLAS for the stem (im2col) and every 1x1 layer; the
    depthwise layers through the same dense sk.conv2d kernel as forward_sparse."""
    for L in layers:
        t = time.perf_counter()
        if L.kind == "stem":
            x = _relu6(dense_conv_im2col(x[0], L.W2, 3, 2, 1, L.b))[None]
        elif L.kind == "dw":
            x = _relu6(sk.conv2d(x, L.W, L.b, stride=L.stride, padding=1, groups=x.shape[1]))
        elif L.kind == "pw":
            c, h, w = x.shape[1:]
            y = L.W2 @ x.reshape(c, h * w)
            y += L.b[:, None]
            x = _relu6(y).reshape(1, -1, h, w)
        else:
            v = x.mean(axis=(2, 3), dtype=F32).reshape(-1, 1)
            x = (L.W2 @ v).reshape(-1) + L.b
        if times is not None:
            times.append(time.perf_counter() - t)
    return x.reshape(-1)


def torch_model(layers: list[Layer]):
    """The dense network in PyTorch (None without torch): f(x) -> logits."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    tl = [(L, torch.from_numpy(L.W.copy()), torch.from_numpy(L.b.copy())) for L in layers]

    def f(x):
        with torch.no_grad():
            t = torch.from_numpy(x)
            for L, W, b in tl:
                if L.kind == "stem":
                    t = F.relu6(F.conv2d(t, W, b, stride=2, padding=1))
                elif L.kind == "dw":
                    t = F.relu6(F.conv2d(t, W, b, stride=L.stride, padding=1, groups=t.shape[1]))
                elif L.kind == "pw":
                    t = F.relu6(F.conv2d(t, W, b))
                else:
                    t = F.conv2d(t.mean(dim=(2, 3), keepdim=True), W, b)
            return t.reshape(-1).numpy()
    return f


# -------------------------------------------------------------------------- timing

def median_time(fn, budget_s: float = 0.5, min_reps: int = 5, max_reps: int = 51) -> float:
    """Median seconds per fn() over calibrated samples (warm-up first)."""
    fn()
    t = time.perf_counter()
    fn()
    est = max(time.perf_counter() - t, 1e-7)
    inner = max(1, int(0.005 / est))
    reps = int(min(max_reps, max(min_reps, budget_s / (inner * est))))
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t) / inner)
    return float(np.median(samples))


def layer_cases(sparsity: float = 0.9, seed: int = 0):
    """[(name, sparse fn, dense fn, bar key)] for the bar layers (1x1 and the 3x3)."""
    rng = np.random.default_rng([seed, 55])
    out = []
    for ci, co, hw in BAR_1X1:
        W = rng.standard_normal((co, ci, 1, 1), dtype=F32)
        Wc = sk.pack(W, "unstructured", sparsity=sparsity)
        W2 = np.ascontiguousarray(Wc.to_dense().reshape(co, ci))
        x = rng.standard_normal((1, ci, hw, hw), dtype=F32)
        X2 = x.reshape(ci, hw * hw)
        out.append((f"1x1 {ci}->{co} @{hw}x{hw}", lambda x=x, Wc=Wc: sk.conv2d(x, Wc),
                    lambda W2=W2, X2=X2: W2 @ X2, "1x1"))
    W = rng.standard_normal((64, 64, 3, 3), dtype=F32)
    Wc = sk.pack(W, "unstructured", sparsity=sparsity)
    W2 = np.ascontiguousarray(Wc.to_dense().reshape(64, -1))
    x = rng.standard_normal((1, 64, 56, 56), dtype=F32)
    out.append(("3x3 64->64 @56x56 s1 p1", lambda: sk.conv2d(x, Wc, padding=1),
                lambda: dense_conv_im2col(x[0], W2, 3, 1, 1), "3x3"))
    return out


def run(args, say, sparsity: float = 0.9) -> list[dict]:
    """The conv rows of ``sparsekern bench``: the bar layers and the whole network."""
    quick = not getattr(args, "full", False)
    budget = 0.4 if quick else 1.5
    say(f"sparse conv2d: float32, batch 1, {sparsity:.0%} sparse weights, "
        f"threads {sk.get_num_threads()}; medians, sparse and dense timed in the same run")
    say(f"{'case':34s} {'sparsekern':>11s} {'dense':>11s} {'ratio':>7s} {'bar':>5s}")
    rows = []

    def row(name, ts, td, bar, base="numpy"):
        r = td / ts
        ok = "" if bar is None else ("ok" if r >= bar else "BELOW")
        say(f"{name:34s} {ts * 1e6:9.0f}us {td * 1e6:9.0f}us {r:6.2f}x {bar or '':>5} {ok}")
        rows.append(dict(case=name, sparse_s=ts, dense_s=td, ratio=r, bar=bar, baseline=base))

    for name, fs, fd, key in layer_cases(sparsity, getattr(args, "seed", 0)):
        ts = median_time(fs, budget)
        td = median_time(fd, budget)
        row(name, ts, td, BARS[key])
    net = mobilenet_v1(sparsity, getattr(args, "seed", 0))
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224), dtype=F32)
    ts = median_time(lambda: forward_sparse(x, net), 2 * budget, min_reps=5)
    td = median_time(lambda: forward_dense(x, net), 2 * budget, min_reps=5)
    row("MobileNetV1 224 (whole network)", ts, td, BARS["network"])
    tm = torch_model(net)
    if tm is not None:
        import torch

        torch.set_num_threads(sk.get_num_threads())
        tt = median_time(lambda: tm(x), 2 * budget, min_reps=5)
        row("MobileNetV1 vs PyTorch dense", ts, tt, BARS["torch"], "torch")
    else:
        say("(PyTorch not installed: no PyTorch comparison)")
    say("dense: numpy W @ X (1x1), im2col + BLAS (3x3, stem); network depthwise layers run "
        "the same sk.conv2d kernel in both. Timings on a shared machine are noisy: compare "
        "within one run.")
    say()
    return rows
