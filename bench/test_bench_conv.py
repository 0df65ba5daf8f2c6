"""Sparse conv2d: the MobileNetV1 1x1 layers and the 3x3 case at 90% sparsity,
sparsekern against dense numpy (``W @ X`` on the CHW plane; im2col + BLAS for 3x3), and
the whole MobileNetV1 (1x1 layers 90% sparse) against the same network dense and, where
installed, PyTorch's dense model. Compare within a group
(``--benchmark-group-by=group``); everything comes from ``sparsekern.bench.conv``.
"""
from __future__ import annotations

import numpy as np
import pytest

import sparsekern as sk
from sparsekern.bench import conv as mb
from sparsekern import bench as skb

CASES = mb.layer_cases(0.9, 42)


@pytest.mark.parametrize("impl", ["sparsekern", "numpy"])
@pytest.mark.parametrize("case", range(len(CASES)), ids=[c[0].replace(" ", "_") for c in CASES])
def test_conv_layer(benchmark, threads, case, impl):
    name, fs, fd, key = CASES[case]
    benchmark.group = f"conv {name}"
    benchmark.extra_info.update(case=name, impl=impl, bar=f">= {mb.BARS[key]}x dense")
    with skb.configured(threads=threads):
        benchmark(fs if impl == "sparsekern" else fd)


@pytest.fixture(scope="module")
def mobilenet():
    net = mb.mobilenet_v1(0.9, 42)
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224), dtype=np.float32)
    return net, x


@pytest.mark.parametrize("impl", ["sparsekern", "dense", "torch"])
def test_mobilenet_v1(benchmark, threads, mobilenet, impl):
    net, x = mobilenet
    benchmark.group = "MobileNetV1 224, 1x1 layers 90% sparse"
    benchmark.extra_info.update(impl=impl, bar=">= 2x dense and torch")
    if impl == "torch":
        f = mb.torch_model(net)
        if f is None:
            pytest.skip("torch not installed")
        import torch

        torch.set_num_threads(threads)
        benchmark(f, x)
        return
    fn = mb.forward_sparse if impl == "sparsekern" else mb.forward_dense
    with skb.configured(threads=threads):
        benchmark(fn, x, net)
    assert sk.info()["threads"] >= 1
