"""Sparse MobileNetV1 with sparsekern ("Fast Sparse ConvNets" on a CPU, from Python).

MobileNetV1 (224x224, width 1.0, batch 1) with random weights: a dense 3x3 stem, 13
depthwise-separable blocks (depthwise 3x3 dense, pointwise 1x1 magnitude-pruned to
--sparsity) and a 1x1 classifier pruned alike. Runs it with sparsekern ops and the same
network dense (numpy BLAS for the stem and the 1x1 layers; the depthwise layers use the
same sk.conv2d kernel in both), prints per-layer and total times, and checks the two
agree when --sparsity is 0 (and against PyTorch's dense model when torch is installed).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python examples/sparse_mobilenet.py --sparsity 0.9
"""
from __future__ import annotations

import argparse

import numpy as np

import sparsekern as sk
from sparsekern.bench import conv as mb
from sparsekern.bench import blas_threads


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sparsity", type=float, default=0.9, help="of every 1x1 layer (default 0.9)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=7, help="runs per network (median)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    sk.set_num_threads(args.threads)
    net = mb.mobilenet_v1(args.sparsity, args.seed)
    x = np.random.default_rng(args.seed).standard_normal((1, 3, 224, 224), dtype=np.float32)
    with blas_threads(args.threads):
        ys, yd = mb.forward_sparse(x, net), mb.forward_dense(x, net)   # warm-up + results
        ts_all, td_all = [], []
        for _ in range(args.repeat):
            ts, td = [], []
            mb.forward_sparse(x, net, ts)
            mb.forward_dense(x, net, td)
            ts_all.append(ts)
            td_all.append(td)
        # the whole networks, timed as units, alternating (medians: the machine may be shared)
        whole_s, whole_d = [], []
        for _ in range(args.repeat):
            whole_s.append(mb.median_time(lambda: mb.forward_sparse(x, net), 0.2, 3, 5))
            whole_d.append(mb.median_time(lambda: mb.forward_dense(x, net), 0.2, 3, 5))
    ts = np.median(np.array(ts_all), axis=0)
    td = np.median(np.array(td_all), axis=0)
    tot_s, tot_d = float(np.median(whole_s)), float(np.median(whole_d))
    print(f"sparsekern {sk.__version__} {sk.info()['backend']}/{sk.info()['isa']}, "
          f"{args.threads} thread(s); 1x1 layers {args.sparsity:.0%} sparse; median of "
          f"{args.repeat} runs")
    print(f"{'layer':26s} {'sparse':>10s} {'dense':>10s} {'speedup':>8s}")
    for L, a, b in zip(net, ts, td):
        print(f"{L.name:26s} {a * 1e3:8.3f}ms {b * 1e3:8.3f}ms {b / a:7.2f}x")
    print(f"{'sum of layer medians':26s} {ts.sum() * 1e3:8.3f}ms {td.sum() * 1e3:8.3f}ms "
          f"{td.sum() / ts.sum():7.2f}x")
    print(f"{'whole network (median)':26s} {tot_s * 1e3:8.3f}ms {tot_d * 1e3:8.3f}ms "
          f"{tot_d / tot_s:7.2f}x")
    err = float(np.max(np.abs(ys - yd)) / max(1e-30, float(np.max(np.abs(yd)))))
    print(f"max |sparse - dense| / max |dense| = {err:.2e}")
    ok = True
    if args.sparsity == 0:
        ok = err < 1e-4
        print("sparsity 0: the sparse and the dense network agree" if ok else
              "sparsity 0: MISMATCH between the sparse and the dense network")
    tm = mb.torch_model(net)
    if tm is not None:
        import torch

        torch.set_num_threads(args.threads)
        yt = tm(x)
        tt = mb.median_time(lambda: tm(x), 2.0)
        terr = float(np.max(np.abs(ys - yt)) / max(1e-30, float(np.max(np.abs(yt)))))
        print(f"PyTorch dense: {tt * 1e3:.3f}ms -> sparse speedup {tt / tot_s:.2f}x "
              f"(rel. difference {terr:.2e})")
    else:
        print("PyTorch not installed: no PyTorch comparison")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
