"""Y = W @ X (+ bias) for the N:M structured format (values + position bit streams)."""
from __future__ import annotations

import numba as nb
import numpy as np

from ._common import NO_BIAS, JIT as _JIT, has_nonfinite as _has_nonfinite, mark_nonfinite_column


@nb.njit(inline="always", **_JIT)
def _slot_col(mrow, s, n_keep, m_group, pos_bits):
    """Column of slot s of a row whose positions are the bit stream ``mrow``."""
    bit = s * pos_bits
    byte = bit >> 3
    word = np.int64(mrow[byte])
    if byte + 1 < mrow.shape[0]:
        word |= np.int64(mrow[byte + 1]) << 8
    return (s // n_keep) * m_group + ((word >> (bit & 7)) & ((1 << pos_bits) - 1))


@nb.njit(parallel=True, **_JIT)
def _spmm_rows(values, meta, k_cols, n_keep, m_group, pos_bits, x, bias, has_bias, y):
    rows, slots = values.shape
    n = x.shape[1]
    for r in nb.prange(rows):
        yrow = y[r]
        b = bias[r] if has_bias else np.float32(0.0)
        for j in range(n):
            yrow[j] = b
        mrow = meta[r]
        vrow = values[r]
        for s in range(slots):
            col = _slot_col(mrow, s, n_keep, m_group, pos_bits)
            if col >= k_cols:
                continue
            v = vrow[s]
            xrow = x[col]
            for j in range(n):
                yrow[j] += v * xrow[j]


@nb.njit(**_JIT)
def _propagate_nonfinite(meta, slots, k_cols, n_keep, m_group, pos_bits, x, y):
    # a zero of W (a position no slot stores) times inf/NaN is NaN in dense BLAS
    n = x.shape[1]
    bad = np.zeros(k_cols, np.bool_)
    for j in range(n):
        nbad = mark_nonfinite_column(x, j, bad)
        if nbad == 0:
            continue
        for r in range(meta.shape[0]):
            mrow = meta[r]
            covered = 0
            for s in range(slots):
                col = _slot_col(mrow, s, n_keep, m_group, pos_bits)
                if col < k_cols:
                    covered += bad[col]
            if covered < nbad:
                y[r, j] = np.nan




def spmm_nm(values, meta, k_cols, n_keep, m_group, pos_bits, x, bias, out) -> None:
    has_bias = bias is not None
    _spmm_rows(values, meta, k_cols, n_keep, m_group, pos_bits, x,
               bias if has_bias else NO_BIAS, has_bias, out)
    if x.size and _has_nonfinite(x):
        _propagate_nonfinite(meta, values.shape[1], k_cols, n_keep, m_group, pos_bits, x, out)
