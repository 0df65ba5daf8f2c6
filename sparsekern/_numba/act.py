"""Activation-sparse linear and delta steps (the "act" format), same semantics as
csrc/ops/f32_act_linear.c: per row, select the channels, then add their weight rows.

Rows run one at a time (no union of a batch's channels: numba is the fallback, and
per-row selection keeps it simple); the weight-row accumulation is parallel over
column chunks when a row is large enough.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from ._common import NO_BIAS, JIT as _JIT
_CHUNK = 1024


@nb.njit(**_JIT)
def _key(s):
    # order of scores (>= 0 or NaN) as unsigned ints; every NaN above +inf
    return np.uint32(np.array([s], np.float32).view(np.uint32)[0] & np.uint32(0x7fffffff))


@nb.njit(**_JIT)
def _select_row(x, norms, finite, threshold, topk, wina, idx, val, key):
    K = x.shape[0]
    allc = threshold < 0
    cnt = 0
    for k in range(K):
        v = x[k]
        s = np.float32(abs(v))
        if wina:
            s = np.float32(s * norms[k])
        keep = allc or not (s <= threshold)
        if topk < 0 and finite and v == 0:
            keep = False
        if keep:
            idx[cnt] = k
            val[cnt] = v
            key[cnt] = _key(s)
            cnt += 1
    if topk < 0:
        return cnt
    if cnt > topk:
        # descending by key, ties in channel order (stable sort of the complement)
        comp = np.empty(cnt, np.int64)
        for c in range(cnt):
            comp[c] = np.int64(0xffffffff) - np.int64(key[c])
        order = np.argsort(comp, kind="mergesort")[:topk]
        order.sort()
        for c in range(topk):
            o = order[c]
            idx[c] = idx[o]
            val[c] = val[o]
        cnt = topk
    if finite:
        out = 0
        for c in range(cnt):
            if val[c] != 0:
                idx[out] = idx[c]
                val[out] = val[c]
                out += 1
        cnt = out
    return cnt


@nb.njit(**_JIT)
def _add_rows(wt, idx, val, cnt, y, j0, j1):
    for c in range(cnt):
        a = val[c]
        w = wt[idx[c]]
        for j in range(j0, j1):
            y[j] += a * w[j]


# The parallel loops live in the two entry points themselves, not in a parallel helper
# they both call: numba's cache then mis-links the helper's parallel region when the two
# callers were compiled in different processes (a segfault in every later process).
@nb.njit(parallel=True, **_JIT)
def _act_linear(wt, norms, finite, x, bias, has_bias, out, threshold, topk, wina):
    rows, K = x.shape
    m = out.shape[1]
    nchunks = (m + _CHUNK - 1) // _CHUNK
    idx = np.empty(K, np.int64)
    val = np.empty(K, np.float32)
    key = np.empty(K, np.uint32)
    total = 0
    for i in range(rows):
        for j in range(m):
            out[i, j] = bias[j] if has_bias else np.float32(0)
        cnt = _select_row(x[i], norms, finite, threshold, topk, wina, idx, val, key)
        total += cnt
        if cnt > 0:
            yi = out[i]
            for ch in nb.prange(nchunks):
                _add_rows(wt, idx, val, cnt, yi, ch * _CHUNK, min(m, (ch + 1) * _CHUNK))
    return total


@nb.njit(parallel=True, **_JIT)
def _act_delta(wt, x, xref, y, theta):
    rows, K = x.shape
    m = y.shape[1]
    nchunks = (m + _CHUNK - 1) // _CHUNK
    idx = np.empty(K, np.int64)
    val = np.empty(K, np.float32)
    total = 0
    for i in range(rows):
        cnt = 0
        for k in range(K):
            d = np.float32(x[i, k] - xref[i, k])
            if not (abs(d) <= theta):
                idx[cnt] = k
                val[cnt] = d
                cnt += 1
        for c in range(cnt):
            xref[i, idx[c]] = x[i, idx[c]]
        total += cnt
        if cnt > 0:
            yi = y[i]
            for ch in nb.prange(nchunks):
                _add_rows(wt, idx, val, cnt, yi, ch * _CHUNK, min(m, (ch + 1) * _CHUNK))
    return total


def act_linear(wt, norms, finite, x, bias, out, threshold, topk, select) -> int:
    has_bias = bias is not None
    return int(_act_linear(wt, norms, bool(finite), x, bias if has_bias else NO_BIAS, has_bias,
                           out, np.float32(threshold), np.int64(topk), bool(select == 1)))


def act_delta(wt, x, xref, y, theta) -> int:
    return int(_act_delta(wt, x, xref, y, np.float32(theta)))
