"""N:M structured sparsity: in every group of M consecutive inputs (along K) of each
row of W[rows, K], at most N entries are nonzero (``"2:4"``, ``"1:8"``, ``"4:16"``: any
1 <= N < M with M in 4, 8, 16).

    Wn = sk.pack(W, "2:4")               # magnitude-prune: keep the N largest |w| per group
    Wn = sk.pack(W24, "2:4", prune=False)  # W already follows the pattern; ValueError if not
    mask = sk.nm_mask(W, 2, 4)           # the boolean mask pack() prunes with

Layout (format ``"N:M"``, class :class:`NMMatrix`), for W[rows, K] and
G = ceil(K / M) groups (the last one padded with columns K..G·M-1 when M does not
divide K):

* ``values`` float32[rows, G·N]: each row's kept entries, group by group (N slots
  per group), in increasing column order within a group.
* ``meta`` uint8[rows, S]: each row's slot positions as a little-endian bit stream
  (byte i holds bits 8i..8i+7, least significant first); slot j's position p (its
  column is (j // N)·M + p) is bits [j·b, (j+1)·b) with b = ceil(log2 M) = 2, 3, 4
  for M = 4, 8, 16. S = ceil(G·N·b / 64)·8 bytes (rows padded to 8-byte words, the
  padding bits zero). Positions are strictly increasing within a group; a slot in
  the padding of the last group holds 0.0 and is never read by the kernels.

Bytes: 4·N/M per entry of W for values + b·N/(8·M) for positions; float32 2:4 is
(8 + 0.5)/16 = 0.53 of the dense bytes (4096x4096: 32 MiB + 2 MiB vs 64 MiB), 1:4
0.27, 1:8 0.14. Groups with fewer than N nonzeros store explicit zeros.
"""
from __future__ import annotations

import re

import numpy as np

from .._errors import F32
from ._base import (_CHUNK, PackedMatrix, _as_matrix, _check_shape, _expect_arrays, _readonly,
                    _stored_ints, register_format)

__all__ = ["NMMatrix", "nm_mask", "parse_pattern"]

_MS = {4: 2, 8: 3, 16: 4}           # M -> position bits
_PATTERN = re.compile(r"^\s*([0-9]+)\s*:\s*([0-9]+)\s*$", re.ASCII)


def parse_pattern(pattern) -> tuple[int, int]:
    """``"2:4"`` -> (2, 4); ValueError unless 1 <= N < M and M in {4, 8, 16}."""
    if not isinstance(pattern, str):
        raise TypeError(f"an N:M pattern must be a string such as '2:4' (got {pattern!r})")
    mt = _PATTERN.match(pattern)
    if not mt:
        raise ValueError(f"invalid N:M pattern {pattern!r}: expected 'N:M' with integers, "
                         f"e.g. '2:4', '1:8', '4:16'")
    return _check_nm(int(mt.group(1)), int(mt.group(2)), repr(pattern))


def _check_nm(n, m, what=None) -> tuple[int, int]:
    for name, v in (("N", n), ("M", m)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an integer (got {v!r})")
    n, m = int(n), int(m)
    what = what or f"{n}:{m}"
    if m not in _MS:
        raise ValueError(f"invalid N:M pattern {what}: M must be 4, 8 or 16 (got {m})")
    if not 1 <= n < m:
        raise ValueError(f"invalid N:M pattern {what}: N must satisfy 1 <= N < M = {m} (got {n})")
    return n, m


def _groups(W: np.ndarray, m: int) -> np.ndarray:
    """W[rows, K] -> [rows, G, m], the last group padded with zeros."""
    rows, k = W.shape
    g = -(-k // m)
    if g * m != k:
        Wp = np.zeros((rows, g * m), W.dtype)
        Wp[:, :k] = W
        W = Wp
    return W.reshape(rows, g, m)


def _select(score: np.ndarray, n: int) -> np.ndarray:
    """For score[rows, G, m], the positions of the n highest scores per group (ties: lower
    position first), sorted ascending: int8/uint8 [rows, G, n]."""
    order = np.argsort(-score, axis=2, kind="stable")[:, :, :n]
    return np.sort(order, axis=2).astype(np.uint8)


def _pad_score(score: np.ndarray, k: int, m: int) -> np.ndarray:
    rows, g, _ = score.shape
    if g * m != k:      # padding columns are chosen last
        score[:, -1, k - (g - 1) * m:] = -1.0
    return score


def nm_mask(W, n: int, m: int) -> np.ndarray:
    """Boolean mask of W's shape keeping the ``n`` largest |w| in every group of ``m``
    consecutive entries along each row (ties: the lower column first; a last group
    narrower than ``m`` keeps min(n, its width)). Exactly what ``pack(W, "n:m")`` keeps."""
    n, m = _check_nm(n, m)
    W = _as_matrix(W)
    if not np.isfinite(W).all():
        raise ValueError("W has NaN or inf entries; N:M magnitude pruning needs finite weights")
    rows, k = W.shape
    if W.size == 0:
        return np.zeros(W.shape, bool)
    score = _pad_score(np.abs(_groups(W, m)).astype(np.float64), k, m)
    pos = _select(score, n)
    mask = np.zeros(score.shape, bool)
    np.put_along_axis(mask, pos.astype(np.intp), True, axis=2)
    return mask.reshape(rows, -1)[:, :k]


def _stride(slots: int, b: int) -> int:
    return -(-(slots * b) // 64) * 8


def _encode(pos: np.ndarray, b: int, stride: int) -> np.ndarray:
    """positions uint8[rows, slots] -> uint8[rows, stride] bit streams."""
    rows, slots = pos.shape
    bits = np.zeros((rows, stride * 8), np.uint8)
    if slots:
        sh = np.arange(b, dtype=np.uint8)
        bits[:, :slots * b] = ((pos[:, :, None] >> sh) & 1).reshape(rows, slots * b)
    return np.packbits(bits, axis=1, bitorder="little").reshape(rows, stride)


def _decode(meta: np.ndarray, b: int, slots: int) -> np.ndarray:
    rows = meta.shape[0]
    if slots == 0 or rows == 0:
        return np.zeros((rows, slots), np.uint8)
    bits = np.unpackbits(meta, axis=1, bitorder="little")[:, :slots * b].reshape(rows, slots, b)
    return (bits << np.arange(b, dtype=np.uint8)).sum(axis=2, dtype=np.uint8)


class NMMatrix(PackedMatrix):
    """W[rows, K] with at most N nonzeros in every group of M consecutive columns
    (see the module doc for the layout). ``format`` is the pattern, e.g. ``"2:4"``."""

    format_help = "'N:M' (e.g. '2:4', '1:8', '4:16'; 1 <= N < M, M in 4, 8, 16)"
    _kernel = "spmm_nm"
    _conv_order = "ky_kx_ci"      # groups of M along C_in (see sparsekern.formats.conv)
    __slots__ = ("_n", "_m", "_values", "_meta", "_nnz", "_c")

    def __init__(self, shape, pattern, values, meta):
        """Build from the packed arrays; validates them (ValueError/TypeError on any fault)."""
        n, m = parse_pattern(pattern)
        values, meta = np.asarray(values), np.asarray(meta)
        self._check_layout(pattern, shape, {"values": (values.shape, values.dtype),
                                            "meta": (meta.shape, meta.dtype)}, {})
        self._shape, self._values, self._meta, self._nnz = _validate(
            _check_shape(shape), n, m, values, meta)
        self._n, self._m, self._c = n, m, None

    # -- registry hooks -------------------------------------------------------------
    @classmethod
    def _accepts(cls, name: str) -> bool:
        return isinstance(name, str) and ":" in name

    @classmethod
    def _pack(cls, W, format: str, *, prune: bool = True) -> "NMMatrix":
        return cls.from_dense(W, format, prune=prune)

    @classmethod
    def _load(cls, format: str, shape: tuple, arrays: dict) -> "NMMatrix":
        _expect_arrays(arrays, ("values", "meta"), (), "an N:M matrix")
        return cls(shape, format, arrays["values"], arrays["meta"])

    @classmethod
    def _check_layout(cls, format, shape, specs, names):
        n, m = parse_pattern(format)
        rows, k = _check_shape(shape)
        _expect_arrays(specs, ("values", "meta"), (), "an N:M matrix")
        (v_shape, v_dtype), (mt_shape, mt_dtype) = specs["values"], specs["meta"]
        slots = -(-k // m) * n
        if v_dtype.kind not in "biuf" or v_dtype.fields is not None:
            raise TypeError(f"values must be real numbers (got dtype {v_dtype})")
        if mt_dtype.kind not in "iu":
            raise TypeError(f"meta must hold integers (bytes) (got dtype {mt_dtype})")
        if v_shape != (rows, slots):
            raise ValueError(f"values must have shape (rows, ceil(K/M)*N) = {(rows, slots)} for "
                             f"a {rows}x{k} {n}:{m} matrix (got {v_shape})")
        stride = _stride(slots, _MS[m])
        if mt_shape != (rows, stride):
            raise ValueError(f"meta must have shape (rows, {stride}) for a {rows}x{k} {n}:{m} "
                             f"matrix (got {mt_shape})")

    @classmethod
    def from_dense(cls, W, pattern: str = "2:4", *, prune: bool = True) -> "NMMatrix":
        """Pack dense W. ``prune=True`` keeps the N largest |w| of every group (see
        :func:`nm_mask`); ``prune=False`` packs W as is and raises ValueError naming the
        first row and group with more than N nonzeros."""
        n, m = parse_pattern(pattern)
        if not isinstance(prune, (bool, np.bool_)):
            raise TypeError(f"prune must be True or False (got {prune!r})")
        W = _as_matrix(W)
        rows, k = W.shape
        if prune and not np.isfinite(W).all():
            raise ValueError("W has NaN or inf entries; N:M magnitude pruning needs finite "
                             "weights (pass prune=False to pack them as they are)")
        Wg = _groups(W, m)
        g = Wg.shape[1]
        if prune:
            score = np.abs(Wg).astype(np.float64)
        else:
            nz = Wg != 0
            counts = nz.sum(axis=2)
            if (counts > n).any():
                r, gi = (int(v) for v in np.argwhere(counts > n)[0])
                c0, c1 = gi * m, min(gi * m + m, k) - 1
                raise ValueError(
                    f"W does not follow the {n}:{m} pattern: row {r}, group {gi} (columns "
                    f"{c0}..{c1}) has {int(counts[r, gi])} nonzeros, at most {n} allowed "
                    f"(pass prune=True to magnitude-prune)")
            score = nz.astype(np.float64)
        pos = _select(_pad_score(score, k, m), n)                      # [rows, G, n]
        values = np.take_along_axis(Wg, pos.astype(np.intp), axis=2).reshape(rows, g * n)
        b = _MS[m]
        meta = _encode(pos.reshape(rows, g * n), b, _stride(g * n, b))
        obj = cls.__new__(cls)
        obj._shape, obj._n, obj._m, obj._c = (rows, k), n, m, None
        obj._values, obj._meta = _readonly(values, F32), _readonly(meta)
        obj._nnz = _count_real(pos, k, m)
        return obj

    @classmethod
    def random(cls, rows: int, k: int, pattern: str = "2:4", rng=None) -> "NMMatrix":
        """A random rows x k N:M matrix built directly in packed form (for benchmarks):
        positions uniform over the C(M, N) choices per group, values standard normal."""
        import itertools

        n, m = parse_pattern(pattern)
        rng = np.random.default_rng() if rng is None else rng
        g = -(-k // m)
        combos = np.array(list(itertools.combinations(range(m), n)), np.uint8)
        if g * m != k and rows and g:      # the narrow last group: real columns first
            last = k - (g - 1) * m
            ok = combos[(combos < last).sum(axis=1) == min(n, last)]
        pos = combos[rng.integers(0, len(combos), size=(rows, g))]
        if g * m != k and rows and g:
            pos[:, -1] = ok[rng.integers(0, len(ok), size=rows)]
        values = rng.standard_normal((rows, g * n), dtype=F32)
        if g * m != k and rows and g:
            vals3 = values.reshape(rows, g, n)
            vals3[:, -1][pos[:, -1] >= k - (g - 1) * m] = 0
        b = _MS[m]
        meta = _encode(pos.reshape(rows, g * n), b, _stride(g * n, b))
        return cls((rows, k), pattern, values, meta)

    # -- properties -----------------------------------------------------------------
    format = property(lambda self: f"{self._n}:{self._m}", doc="the pattern, e.g. '2:4'")
    pattern = property(lambda self: (self._n, self._m), doc="(N, M)")
    values = property(lambda self: self._values, doc="float32[rows, G*N] kept values")
    meta = property(lambda self: self._meta, doc="uint8[rows, S] position bit streams")
    pos_bits = property(lambda self: _MS[self._m], doc="bits per position: 2, 3 or 4")

    @property
    def positions(self) -> np.ndarray:
        """uint8[rows, G*N]: each slot's position within its group (decoded from meta)."""
        return _decode(self._meta, _MS[self._m], self._values.shape[1])

    @property
    def nnz(self) -> int:
        """Stored entries inside W (the slots in the last group's padding are not counted)."""
        return self._nnz

    @property
    def nbytes(self) -> int:
        return self._values.nbytes + self._meta.nbytes

    def to_dense(self) -> np.ndarray:
        rows, k = self._shape
        n, m = self._n, self._m
        g = self._values.shape[1] // n if n else 0
        out = np.zeros((rows, g, m), F32)
        pos = self.positions.reshape(rows, g, n).astype(np.intp)
        np.put_along_axis(out, pos, self._values.reshape(rows, g, n), axis=2)
        return np.ascontiguousarray(out.reshape(rows, g * m)[:, :k])

    def _arrays(self):
        return {"values": self._values, "meta": self._meta}


def _count_real(pos: np.ndarray, k: int, m: int) -> int:
    rows, g, n = pos.shape
    if g * m == k or rows == 0:
        return rows * g * n
    last = k - (g - 1) * m
    return rows * (g - 1) * n + int((pos[:, -1, :] < last).sum())


def _validate(shape, n, m, values, meta):
    """The content checks of an N:M matrix whose layout _check_layout passed."""
    rows, k = shape
    b = _MS[m]
    g = -(-k // m)
    slots = g * n
    stride = _stride(slots, b)
    vals, mt = values, meta
    # every check below runs on the stored copies, never on the caller's arrays
    mt = _readonly(mt) if mt.dtype == np.uint8 else _stored_ints(mt, np.uint8, 0, 256, "meta (bytes)")
    vals = _readonly(vals, F32)
    last = k - (g - 1) * m
    nnz = 0
    step = max(1, _CHUNK // max(1, stride * 8))      # rows per block: bounded temporaries
    for r0 in range(0, rows, step):
        mrows, vrows = mt[r0:r0 + step], vals[r0:r0 + step]
        if stride * 8 > slots * b:
            extra = np.unpackbits(mrows, axis=1, bitorder="little")[:, slots * b:]
            if extra.any():
                r = r0 + int(np.argmax(extra.any(axis=1)))
                raise ValueError(f"meta row {r} has nonzero padding bits past slot {slots}")
        pos = _decode(mrows, b, slots).reshape(mrows.shape[0], g, n)
        if n > 1 and pos.size:
            bad = np.diff(pos.astype(np.int16), axis=2) <= 0
            if bad.any():
                r, gi, _ = (int(v) for v in np.argwhere(bad)[0])
                raise ValueError(f"positions must be strictly increasing (distinct) within each "
                                 f"group: row {r0 + r}, group {gi} has {pos[r, gi].tolist()}")
        nnz += _count_real(pos, k, m)
        if g * m != k and pos.size:
            pad = (pos[:, -1, :] >= last) & (vrows.reshape(-1, g, n)[:, -1, :] != 0)
            if pad.any():
                r, s = (int(v) for v in np.argwhere(pad)[0])
                raise ValueError(f"row {r0 + r}, last group: slot {s} has position "
                                 f"{int(pos[r, -1, s])}, past the last column {k - 1}, but a "
                                 f"nonzero value (padding slots must hold 0)")
    return (rows, k), vals, mt, nnz


register_format(NMMatrix)
