"""Activation-sparsity rows of ``sparsekern bench`` (and the helpers ``bench/test_bench_act.py``
uses): ``sk.linear(x, pack(W, "act"))`` against dense numpy ``x @ W.T`` and the numpy
gather baseline ``x[nz] @ Wt[nz]`` (Wt = W.T contiguous, as a numpy user would keep it to
gather rows; gathering columns of W is ~4x slower still), all three in the same run.

* Weights cold: each implementation rotates through its own matrices, > 2 x LLC in
  total (the gather baseline reads the act matrices' own ``wt``, the same bytes).
* Zeros at random positions, different every call: inputs come from a pool of 97
  vectors, each with its own random zero positions (97 is prime, so the pairing with
  the weight rotation never repeats within a sample).
* Bytes for %BW: the weight rows actually read, 4·M per active input channel.
* Targets (batch 1, 1 thread, cold): input sparsity 0% >= 0.9x dense; 50% >= 1.8x
  dense and >= 2x gather; 90% >= 8x dense, >= 1.2x gather; 97% >= 20x dense, >= 1.2x gather;
  batch 8 with 90% shared zeros >= 5x; DeltaLinear with 90% of inputs moving < theta per
  step >= 6x dense per step.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

import sparsekern as sk

from . import _common as skb
from ..formats import ActMatrix

F32 = np.float32
POOL = 97

BARS = {  # (case, sparsity) -> (x dense, x gather)
    ("exact", 0.0): (0.9, None), ("exact", 0.5): (1.8, 2.0), ("exact", 0.9): (8.0, 1.2),
    ("exact", 0.97): (20.0, 1.2), ("batch8", 0.9): (5.0, None), ("delta", 0.9): (6.0, None),
}


@dataclass
class ActCase:
    name: str            # exact | threshold | topk | wina | batch8 | delta
    m: int
    k: int
    sparsity: float      # fraction of input channels zero / dropped / not moving
    n: int = 1


class ActSet:
    """Cold sets of one shape: act matrices and the same W dense, built on demand."""

    def __init__(self, m: int, k: int, seed: int = 0, llc: int | None = None, cold: bool = True):
        self.m, self.k, self.cold = m, k, cold
        self.count = skb.cold_count(4 * m * k, llc) if cold else 1
        rng = np.random.default_rng([seed, m, k, 11])
        self.dense = [rng.standard_normal((m, k), dtype=F32) for _ in range(self.count)]
        self.act = [ActMatrix.from_dense(W) for W in self.dense]

    def ops(self, kind: str, cold: bool = True) -> list:
        src = self.dense if kind == "dense" else self.act
        return src if cold else src[:1]


def input_pool(k: int, n: int, sparsity: float, rng, shared: bool = False) -> list[np.ndarray]:
    """POOL inputs (k,) or (n, k), ReLU-like: zeros at random positions.
    shared: the rows of one input have the same zero set for ``sparsity`` of the channels
    (each row also zeroes a fifth of the rest, at its own positions)."""
    out = []
    for _ in range(POOL):
        x = np.abs(rng.standard_normal((n, k), dtype=F32))
        if shared:
            x[:, rng.random(k) < sparsity] = 0
            x[rng.random((n, k)) < 0.2] = 0
        else:
            x[rng.random((n, k)) < sparsity] = 0
        out.append(x[0] if n == 1 else x)
    return out


def _cycle_fn(f, pool):
    it = itertools.cycle(pool)
    return lambda W, _x: f(W, next(it))


def selection_kw(case: ActCase) -> dict:
    if case.name == "threshold":
        # inputs are |N(0, 1)|: this quantile drops `sparsity` of them
        return {"threshold": float(np.quantile(np.abs(np.random.default_rng(1).standard_normal(
            100_000)), case.sparsity))}
    if case.name in ("topk", "wina"):
        kw = {"topk": int(round((1 - case.sparsity) * case.k))}
        if case.name == "wina":
            kw["select"] = "wina"
        return kw
    return {}


def gather_fn(case: ActCase, kw: dict):
    """The numpy baseline: select like sparsekern, gather the rows of Wt, multiply."""
    def exact(Wa, x):
        if x.ndim == 1:
            nz = np.flatnonzero(x)
            return x[nz] @ Wa.wt[nz]
        nz = np.flatnonzero(np.any(x != 0, axis=0))
        return x[:, nz] @ Wa.wt[nz]

    if case.name in ("exact", "batch8"):
        return exact
    if case.name == "threshold":
        t = kw["threshold"]
        return lambda Wa, x: (lambda nz: x[nz] @ Wa.wt[nz])(np.flatnonzero(np.abs(x) > t))
    k = kw["topk"]
    if case.name == "topk":
        return lambda Wa, x: (lambda nz: x[nz] @ Wa.wt[nz])(np.argpartition(-np.abs(x), k)[:k])
    return lambda Wa, x: (lambda nz: x[nz] @ Wa.wt[nz])(
        np.argpartition(-np.abs(x) * Wa.norms, k)[:k])


def run_case(case: ActCase, sets: ActSet, st: skb.Settings, bw: float, seed: int = 0) -> dict:
    kw_t = dict(repeat=st.repeat, min_repeat=st.min_repeat, min_sample_s=st.min_sample_s,
                budget_s=st.budget_s)
    rng = np.random.default_rng([seed, case.m, case.k, int(case.sparsity * 1000), case.n])
    acts, dense = sets.ops("act", sets.cold), sets.ops("dense", sets.cold)
    if case.name == "delta":
        return _run_delta(case, sets, kw_t, bw, rng)
    # threshold/topk/wina: dense inputs, the selection makes the sparsity
    zeros = case.sparsity if case.name in ("exact", "batch8") else 0.0
    pool = input_pool(case.k, case.n, zeros, rng, shared=case.name == "batch8")
    kw = selection_kw(case)
    t_sk, y_sk = skb.measure(acts, pool[0], fn=_cycle_fn(lambda W, x: sk.linear(x, W, **kw), pool),
                             **kw_t)
    t_np, _ = skb.measure(dense, pool[0], fn=_cycle_fn(lambda W, x: x @ W.T, pool), **kw_t)
    g = gather_fn(case, kw)
    t_g, _ = skb.measure(acts, pool[0], fn=_cycle_fn(g, pool), **kw_t)
    # rows actually read per call (mean over the pool)
    if case.name in ("exact", "batch8"):
        active = np.mean([np.count_nonzero(np.any(np.atleast_2d(x) != 0, axis=0)) for x in pool])
    elif case.name == "threshold":
        active = np.mean([np.count_nonzero(np.abs(x) > kw["threshold"]) for x in pool])
    else:
        active = kw["topk"]
    return _row(case, t_sk.median, t_np.median, t_g.median, active, bw, len(acts), None,
                (t_sk, t_np, t_g))


def _run_delta(case: ActCase, sets: ActSet, kw_t: dict, bw: float, rng) -> dict:
    """A stream: per step 10% of the inputs jump (by >> theta), the rest drift by a small
    fraction of theta. Each layer of the cold set is a DeltaLinear fed the same stream."""
    k, theta = case.k, 0.1
    steps = [np.where(rng.random(k) < 1 - case.sparsity,
                      rng.standard_normal(k, dtype=F32),
                      rng.standard_normal(k, dtype=F32) * F32(theta * 0.02)).astype(F32)
             for _ in range(POOL)]
    x0 = np.abs(rng.standard_normal(k, dtype=F32))

    def stream(layers, step_fn):
        state = {"x": x0.copy(), "i": 0, "t": 0}

        def fn(layer, _x):
            if state["i"] == 0:
                state["x"] = state["x"] + steps[state["t"] % POOL]
                state["t"] += 1
            state["i"] = (state["i"] + 1) % len(layers)
            return step_fn(layer, state["x"])
        return fn

    deltas = [sk.DeltaLinear(Wa, threshold=theta) for Wa in sets.ops("act", sets.cold)]
    t_sk, _ = skb.measure(deltas, x0, fn=stream(deltas, lambda d, x: d(x)), **kw_t)
    skipped = float(np.mean([d.stats for d in deltas]))
    dense = sets.ops("dense", sets.cold)
    t_np, _ = skb.measure(dense, x0, fn=stream(dense, lambda W, x: x @ W.T), **kw_t)

    class NumpyDelta:     # the same algorithm in numpy: the gather baseline of a delta layer
        def __init__(self, Wa):
            self.wt, self.xref = Wa.wt, np.zeros(k, F32)
            self.y = np.zeros(Wa.shape[0], F32)

        def __call__(self, x):
            d = x - self.xref
            nz = np.flatnonzero(np.abs(d) > theta)
            self.y += d[nz] @ self.wt[nz]
            self.xref[nz] = x[nz]
            return self.y.copy()

    nds = [NumpyDelta(Wa) for Wa in sets.ops("act", sets.cold)]
    t_g, _ = skb.measure(nds, x0, fn=stream(nds, lambda d, x: d(x)), **kw_t)
    return _row(case, t_sk.median, t_np.median, t_g.median, (1 - skipped) * k, bw, len(deltas),
                skipped, (t_sk, t_np, t_g))


def _row(case, t_sk, t_np, t_g, active, bw, operands, skipped, timings=()) -> dict:
    nbytes = 4.0 * case.m * active
    row = dict(case=f"act-{case.name}", shape=f"{case.m}x{case.k}", m=case.m, k=case.k,
               n=case.n, sparsity=case.sparsity, active_channels=float(active),
               sparsekern_s=t_sk, numpy_s=t_np, gather_s=t_g,
               speedup_vs_numpy=t_np / t_sk, speedup_vs_gather=t_g / t_sk,
               gbps=nbytes / t_sk / 1e9, frac_read_bw=nbytes / t_sk / bw,
               numpy_frac_read_bw=4.0 * case.m * case.k / t_np / bw,
               operands=operands, skipped=skipped)
    notes = []
    bar = BARS.get((case.name, case.sparsity))
    if bar is not None and operands > 1:          # the bars are for cold weights
        ok = row["speedup_vs_numpy"] >= bar[0] and (bar[1] is None
                                                    or row["speedup_vs_gather"] >= bar[1])
        want = f">= {bar[0]:g}x np" + (f", >= {bar[1]:g}x gather" if bar[1] else "")
        notes.append(f"bar {want}: {'met' if ok else 'NOT met'}")
        row["bar_met"] = ok
    if skipped is not None:
        notes.append(f"skipped {skipped:.1%} of inputs")
    for name, t in zip(("sparsekern", "numpy", "gather"), timings):
        lo, hi = min(t.samples), max(t.samples)
        if hi - lo > skb.NOISY * t.median:
            notes.append(f"noisy {name}: {skb.fmt_time(lo)}..{skb.fmt_time(hi)}")
    row["notes"] = notes
    return row


COLUMNS = [("case", 13, False), ("shape", 10, False), ("sparse", 6, True), ("N", 2, True),
           ("sparsekern", 10, True), ("numpy", 10, True), ("gather", 10, True),
           ("x np", 6, True), ("x gath", 6, True), ("GB/s", 5, True), ("%BW", 4, True),
           ("note", 0, False)]


def _line(cells) -> str:
    return "  ".join(c.rjust(w) if r else c.ljust(w)
                     for (_, w, r), c in zip(COLUMNS, cells)).rstrip()


def table_row(r: dict) -> str:
    return _line([r["case"], r["shape"], f"{r['sparsity']:.0%}", str(r["n"]),
                  skb.fmt_time(r["sparsekern_s"]), skb.fmt_time(r["numpy_s"]),
                  skb.fmt_time(r["gather_s"]), f"{r['speedup_vs_numpy']:.2f}",
                  f"{r['speedup_vs_gather']:.2f}", f"{r['gbps']:.1f}",
                  f"{r['frac_read_bw']:.0%}", "; ".join(r["notes"])])


LEGEND = """\
act rows: sk.linear(x, pack(W, "act"), ...) vs dense numpy x @ W.T and the numpy gather
  baseline x[nz] @ Wt[nz] (same selection done in numpy), 1 thread each, weights cold
  (each rotates through its own set > 2 x LLC), zeros at fresh random positions per call.
  exact: inputs with that fraction of zeros; topk/wina: k = (1 - sparse)*K; batch8: 8 rows
  whose zero sets share that fraction of K; delta: DeltaLinear per step, 90% of inputs
  moving < theta. GB/s, %BW: weight rows actually read (4*M bytes per active input) / t,
  against the read bandwidth above."""


def build_cases(full: bool) -> list[ActCase]:
    shapes = [(4096, 4096)] + ([(11008, 4096), (4096, 11008)] if full else [])
    cases = []
    for m, k in shapes:
        for s in (0.0, 0.5, 0.9, 0.97):
            cases.append(ActCase("exact", m, k, s))
        cases.append(ActCase("topk", m, k, 0.9))
        cases.append(ActCase("wina", m, k, 0.5))
        if full:
            cases.append(ActCase("threshold", m, k, 0.5))
        cases.append(ActCase("batch8", m, k, 0.9, n=8))
        cases.append(ActCase("delta", m, k, 0.9))
    return cases


ACT_QUICK = skb.Settings(repeat=5, min_repeat=3, min_sample_s=0.02, budget_s=0.4)


def run(args, say, bw: float, llc: int) -> list[dict]:
    """The act table of ``sparsekern bench``; returns its rows."""
    st = skb.FULL if args.full else ACT_QUICK
    cases = build_cases(args.full)
    say()
    say("activation sparsity (format 'act'): x @ W.T, batch 1 unless N says otherwise")
    say(_line([c[0] for c in COLUMNS]))
    rows = []
    sets = None
    with skb.blas_threads(args.threads), skb.configured(threads=args.threads):
        for case in cases:
            if sets is None or (sets.m, sets.k) != (case.m, case.k):
                sets = None
                sets = ActSet(case.m, case.k, args.seed, llc, cold=not args.warm)
            row = run_case(case, sets, st, bw, args.seed)
            row["threads"] = args.threads
            rows.append(row)
            say(table_row(row))
    say()
    say(LEGEND)
    return rows
