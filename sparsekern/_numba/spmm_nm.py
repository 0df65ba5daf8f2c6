"""Y = W @ X (+ bias) for the N:M structured format (values + position bit streams)."""
from __future__ import annotations

import numba as nb
import numpy as np

from ._common import NO_BIAS, JIT as _JIT, has_nonfinite as _has_nonfinite, propagate_nonfinite


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
def _slot_columns(meta, slots, n_keep, m_group, pos_bits):
    """Every row's slot columns as a CSR column index (padding slots point past K)."""
    rows = meta.shape[0]
    cols = np.empty(rows * slots, np.int64)
    for r in range(rows):
        for s in range(slots):
            cols[r * slots + s] = _slot_col(meta[r], s, n_keep, m_group, pos_bits)
    return cols


def spmm_nm(values, meta, k_cols, n_keep, m_group, pos_bits, x, bias, out) -> None:
    has_bias = bias is not None
    _spmm_rows(values, meta, k_cols, n_keep, m_group, pos_bits, x,
               bias if has_bias else NO_BIAS, has_bias, out)
    if x.size and _has_nonfinite(x):
        rows, slots = values.shape
        propagate_nonfinite(np.arange(rows + 1, dtype=np.int64) * slots,
                            _slot_columns(meta, slots, n_keep, m_group, pos_bits), x, out)
