"""The packed formats as the fuzz targets see them: valid arrays to start from, mutations,
and an independent reading of what a set of arrays means (the oracle for constructors,
``sk.load`` and pickles).

:func:`classify` follows the layouts documented in the README and in each format's module
doc, written from those documents rather than from sparsekern's validators. It returns a
:class:`Verdict`: valid (the call must accept and give this dense matrix), invalid (it
must raise ValueError/TypeError) or either (documented behaviour leaves it open; if
accepted, the result must still be right).
"""
from __future__ import annotations

import math
import numbers
import re

import numpy as np

from _harness import (F32, Finding, Rejected, Source, check_result, dim, floats, on_each_variant,
                      same_array, sk)
import reference

VALID, INVALID, EITHER = True, False, None
DENSE_LIMIT = 2_000_000          # entries: larger matrices are checked without a dense copy
MAX_COLS = 2**31 - 1
NM_BITS = {4: 2, 8: 3, 16: 4}

INTS = [0, 1, -1, 2, 3, 7, 255, 256, 2**15, 2**16 - 1, 2**16, 2**31 - 1, 2**31, -2**31, 2**32,
        2**62, 2**63 - 1, -2**63, 2**64 - 1]
DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
          np.float16, np.float32, np.float64, np.bool_, np.complex64, ">i8", ">f4", "<U3"]


class Verdict:
    def __init__(self, valid, why: str = "", dense=None, fmt=None, shape=None, conv=None):
        self.valid = valid          # VALID, INVALID or EITHER
        self.why = why              # what makes it invalid (or either)
        self.dense = dense          # float32 (M, K), or 4-D for a conv weight; None if too big
        self.fmt = fmt              # the format name the packed matrix must report
        self.shape = shape          # the shape it must report
        self.conv = conv            # for a conv weight: the inner format

    def worst(self, valid, why):
        """Lower the verdict to ``valid`` (INVALID < EITHER < VALID) with its reason."""
        order = {INVALID: 0, EITHER: 1, VALID: 2}
        if order[valid] < order[self.valid]:
            self.valid, self.why = valid, why
        return self

    def __repr__(self):
        return f"<Verdict {self.valid} {self.why!r} fmt={self.fmt} shape={self.shape}>"


def invalid(why: str) -> Verdict:
    return Verdict(INVALID, why)


# -- reading arguments ----------------------------------------------------------------------

def _is_int(d) -> bool:
    return isinstance(d, numbers.Integral) and not isinstance(d, (bool, np.bool_))


def read_shape(shape, ndim: int):
    """(dims, None) or (None, why)."""
    if isinstance(shape, (str, bytes, dict, set)) or shape is None:
        return None, f"shape {shape!r} is not a sequence of integers"
    try:
        dims = tuple(shape)
    except TypeError:
        return None, f"shape {shape!r} is not a sequence"
    if len(dims) != ndim or not all(_is_int(d) for d in dims):
        return None, f"shape {shape!r} is not {ndim} integers"
    dims = tuple(int(d) for d in dims)
    if min(dims, default=0) < 0:
        return None, f"shape {dims} is negative"
    return dims, None


def read_array(a, kinds: str, ndim: int, name: str):
    """(array, None, valid) or (None, why, INVALID): ``a`` as numpy reads it, when its
    dtype kind is in ``kinds`` and it has ``ndim`` dimensions. Bool for integers, and an
    empty float array for integers, are EITHER."""
    if a is None or isinstance(a, (str, bytes, dict)):
        return None, f"{name} is {type(a).__name__}", INVALID
    try:
        arr = np.asarray(a)
    except Exception as e:
        return None, f"{name} is not an array ({e})", INVALID
    if arr.ndim != ndim:
        return None, f"{name} has {arr.ndim} dimensions, not {ndim}", INVALID
    kind = arr.dtype.kind
    if kind in kinds and not arr.dtype.hasobject and arr.dtype.fields is None:
        return arr, None, VALID
    if kinds == "iu" and (kind == "b" or kind == "f" and arr.size == 0):
        return arr, f"{name} has dtype {arr.dtype}", EITHER
    return None, f"{name} has dtype {arr.dtype}", INVALID


def _ints(arr: np.ndarray, name: str):
    """int64 values of an integer array, or (None, why) when some do not fit int64."""
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > 2**63 - 1:
        return None, f"{name} holds {int(arr.max())}"
    return arr.astype(np.int64), None


# -- what a set of arrays means --------------------------------------------------------------

def classify_csr(shape, row_ptr, col_idx, values) -> Verdict:
    dims, why = read_shape(shape, 2)
    if dims is None:
        return invalid(why)
    m, k = dims
    if k > MAX_COLS or m > 2**62:
        return invalid(f"shape {dims} is too large")
    v = Verdict(VALID, fmt="unstructured", shape=dims)
    arrays = {}
    for name, a, kinds in (("row_ptr", row_ptr, "iu"), ("col_idx", col_idx, "iu"),
                           ("values", values, "biuf")):
        arr, why, ok = read_array(a, kinds, 1, name)
        if arr is None:
            return invalid(why)
        v.worst(ok, why)
        arrays[name] = arr
    rp, why = _ints(arrays["row_ptr"], "row_ptr")
    if rp is None:
        return invalid(why)
    ci, why = _ints(arrays["col_idx"], "col_idx")
    if ci is None:
        return invalid(why)
    vals = arrays["values"].astype(F32)
    nnz = vals.shape[0]
    if rp.shape[0] != m + 1:
        return invalid(f"row_ptr has {rp.shape[0]} entries for {m} rows")
    if ci.shape[0] != nnz:
        return invalid("col_idx and values differ in length")
    if rp[0] != 0 or rp[-1] != nnz or np.any(np.diff(rp) < 0):
        return invalid("row_ptr is not 0 .. nnz, non-decreasing")
    if nnz and (ci.min() < 0 or ci.max() >= k):
        return invalid("col_idx out of range")
    rows = np.repeat(np.arange(m), np.diff(rp))
    if nnz > 1:
        same_row = rows[1:] == rows[:-1]
        if np.any(same_row & (ci[1:] <= ci[:-1])):
            return invalid("col_idx not strictly increasing within a row")
    if m * k <= DENSE_LIMIT:
        v.dense = np.zeros((m, k), F32)
        v.dense[rows, ci] = vals
    return v


_PATTERN = re.compile(r" *([0-9]+) *: *([0-9]+) *")


def classify_pattern(pattern):
    """((n, m), verdict-level, why) or (None, INVALID, why)."""
    if not isinstance(pattern, str):
        return None, INVALID, f"pattern {pattern!r} is not a string"
    level, why = VALID, ""
    mt = _PATTERN.fullmatch(pattern)
    if mt is None:
        # other ASCII whitespace around the numbers: the docs say nothing either way
        mt = re.fullmatch(r"[ \t\n\r\f\v]*([0-9]+)[ \t\n\r\f\v]*:[ \t\n\r\f\v]*([0-9]+)"
                          r"[ \t\n\r\f\v]*", pattern)
        if mt is None:
            return None, INVALID, f"pattern {pattern!r} is not N:M"
        level, why = EITHER, f"pattern {pattern!r} has unusual whitespace"
    n, m = int(mt.group(1)), int(mt.group(2))
    if m not in NM_BITS or not 1 <= n < m:
        return None, INVALID, f"pattern {n}:{m} is out of range"
    return (n, m), level, why


def nm_stride(slots: int, bits: int) -> int:
    return -(-(slots * bits) // 64) * 8


def classify_nm(shape, pattern, values, meta) -> Verdict:
    nm, level, why = classify_pattern(pattern)
    if nm is None:
        return invalid(why)
    n, m = nm
    dims, why2 = read_shape(shape, 2)
    if dims is None:
        return invalid(why2)
    rows, k = dims
    if k > MAX_COLS or rows > 2**62:
        return invalid(f"shape {dims} is too large")
    v = Verdict(level, why, fmt=f"{n}:{m}", shape=dims)
    vals, why, ok = read_array(values, "biuf", 2, "values")
    if vals is None:
        return invalid(why)
    v.worst(ok, why)
    mt, why, ok = read_array(meta, "iu", 2, "meta")
    if mt is None:
        return invalid(why)
    v.worst(ok, why)
    b = NM_BITS[m]
    g = -(-k // m)
    slots = g * n
    stride = nm_stride(slots, b)
    if vals.shape != (rows, slots):
        return invalid(f"values has shape {vals.shape}, not {(rows, slots)}")
    if mt.shape != (rows, stride):
        return invalid(f"meta has shape {mt.shape}, not {(rows, stride)}")
    mt64, why = _ints(mt, "meta")
    if mt64 is None or mt64.size and (mt64.min() < 0 or mt64.max() > 255):
        return invalid("meta entries are not bytes")
    vals = vals.astype(F32)
    dense = np.zeros((rows, k), F32) if rows * k <= DENSE_LIMIT else None
    mask = (1 << b) - 1
    for r in range(rows):
        word = int.from_bytes(bytes(mt64[r].astype(np.uint8)), "little")
        if word >> (slots * b):
            return invalid(f"meta row {r} has padding bits set")
        for gi in range(g):
            prev = -1
            for s in range(n):
                j = gi * n + s
                p = (word >> (j * b)) & mask
                if p <= prev:
                    return invalid(f"row {r} group {gi}: positions not increasing")
                prev = p
                col = gi * m + p
                if col >= k:
                    if not vals[r, j] == 0:
                        return invalid(f"row {r}: a padding slot holds {vals[r, j]}")
                elif dense is not None:
                    dense[r, col] = vals[r, j]
    v.dense = dense
    return v


def classify_act(shape, wt, norms=None, norms_given: bool = True) -> Verdict:
    dims, why = read_shape(shape, 2)
    if dims is None:
        return invalid(why)
    m, k = dims
    if k > MAX_COLS or m > 2**62:
        return invalid(f"shape {dims} is too large")
    v = Verdict(VALID, fmt="act", shape=dims)
    w, why, ok = read_array(wt, "biuf", 2, "wt")
    if w is None:
        return invalid(why)
    if w.shape != (k, m):
        return invalid(f"wt has shape {w.shape}, not {(k, m)}")
    W = np.ascontiguousarray(w.astype(F32).T)
    if norms_given and norms is not None:
        nv, why, ok = read_array(norms, "biuf", 1, "norms")
        if nv is None:
            return invalid(why)
        if nv.shape != (k,):
            return invalid(f"norms has shape {nv.shape}, not {(k,)}")
        calc = reference.act_column_norms(W).astype(np.float64)
        got = nv.astype(F32).astype(np.float64)
        with np.errstate(all="ignore"):
            rel = np.abs(got - calc) / np.abs(calc)
        same = (got == calc) | np.isnan(got) & np.isnan(calc)
        rel = np.where(same, 0.0, np.where(np.isnan(rel), np.inf, rel))
        if np.any(rel > 1e-4):
            return invalid("norms do not match wt")
        if np.any(rel > 1e-6):
            v.worst(EITHER, "norms differ from wt's by about the allowed rounding")
    v.dense = W if m * k <= DENSE_LIMIT else None
    return v


def classify_conv(shape, matrix_verdict: Verdict, matrix) -> Verdict:
    """A conv weight of ``shape`` over the 2-D ``matrix`` (already accepted, described by
    ``matrix_verdict``)."""
    dims, why = read_shape(shape, 4)
    if dims is None:
        return invalid(why)
    co, cg, kh, kw = dims
    if kh < 1 or kw < 1:
        return invalid(f"conv shape {dims} has an empty kernel")
    mv = matrix_verdict
    if not isinstance(matrix, (sk.UnstructuredMatrix, sk.NMMatrix)):
        return invalid(f"a conv weight cannot hold {type(matrix).__name__}")
    if mv.shape != (co, cg * kh * kw):
        return invalid(f"matrix shape {mv.shape} does not fit {dims}")
    v = Verdict(mv.valid, mv.why, fmt="conv2d", shape=dims, conv=mv.fmt)
    if mv.dense is not None and not np.isfinite(mv.dense).all():
        return invalid("conv weights must be finite")
    if mv.dense is not None and math.prod(max(d, 1) for d in dims) <= DENSE_LIMIT:
        if isinstance(matrix, sk.UnstructuredMatrix):       # columns in (ci, ky, kx) order
            v.dense = mv.dense.reshape(dims)
        else:                                              # N:M along C_in: (ky, kx, ci)
            v.dense = np.ascontiguousarray(mv.dense.reshape(co, kh, kw, cg).transpose(0, 3, 1, 2))
    else:
        v.worst(EITHER, "too large to check")
    return v


def classify(fmt, shape, arrays) -> Verdict:
    """What the arrays a file or pickle holds mean, for format name ``fmt`` (a conv weight:
    its inner arrays and ``inner_format``)."""
    if not isinstance(fmt, str):
        return invalid(f"format {fmt!r} is not a string")
    if not isinstance(arrays, dict) or not all(isinstance(k, str) for k in arrays):
        return invalid("arrays is not a dict of names")
    keys = set(arrays)
    if fmt == "unstructured":
        if keys != {"row_ptr", "col_idx", "values"}:
            return invalid(f"unstructured arrays {sorted(keys)}")
        return classify_csr(shape, arrays["row_ptr"], arrays["col_idx"], arrays["values"])
    if fmt == "act":
        if keys == {"wt"}:      # a pickle may leave the norms out; a file must have them
            return classify_act(shape, arrays["wt"]).worst(EITHER, "act without norms")
        if keys != {"wt", "norms"}:
            return invalid(f"act arrays {sorted(keys)}")
        return classify_act(shape, arrays["wt"], arrays["norms"])
    if fmt == "conv2d":
        inner = arrays.get("inner_format")
        level, why = VALID, ""
        if isinstance(inner, np.ndarray) and inner.shape == () and inner.dtype.kind == "U":
            inner = str(inner)
        elif isinstance(inner, str):
            level, why = EITHER, "inner_format is a str, not a 0-d array"
        else:
            return invalid(f"inner_format {inner!r}")
        if inner == "conv2d" or inner == "act" or inner != "unstructured" and \
                classify_pattern(inner)[0] is None:
            return invalid(f"inner format {inner!r}")
        dims, why2 = read_shape(shape, 4)
        if dims is None:
            return invalid(why2)
        co, cg, kh, kw = dims
        if kh < 1 or kw < 1:
            return invalid(f"conv shape {dims} has an empty kernel")
        rest = {k: a for k, a in arrays.items() if k != "inner_format"}
        mv = classify(inner, (co, cg * kh * kw), rest)
        if mv.valid is INVALID:
            return mv
        kind = sk.UnstructuredMatrix if inner == "unstructured" else sk.NMMatrix
        v = classify_conv(dims, mv, kind.__new__(kind))
        return v.worst(level, why)
    nm, _, why = classify_pattern(fmt)
    if nm is None:
        return invalid(f"unknown format {fmt!r}")
    if keys != {"values", "meta"}:
        return invalid(f"N:M arrays {sorted(keys)}")
    return classify_nm(shape, fmt, arrays["values"], arrays["meta"])


# -- valid starting points --------------------------------------------------------------------

PATTERNS = ["2:4", "1:4", "3:4", "1:8", "2:8", "4:8", "7:8", "1:16", "4:16", "8:16", "15:16"]


def random_format(src: Source, act: bool = True) -> str:
    choices = ["unstructured", "unstructured", "nm", "nm"] + (["act"] if act else [])
    f = src.pick(choices)
    return src.pick(PATTERNS) if f == "nm" else f


def nm_weights(src: Source, rng, m: int, k: int, n: int, mm: int, nonfinite=True) -> np.ndarray:
    """A dense (m, k) matrix with at most n nonzeros in every group of mm columns."""
    W = floats(src, rng, (m, k), nonfinite=nonfinite)
    keep = np.zeros((m, k), bool)
    for c0 in range(0, k, mm):
        width = min(mm, k - c0)
        pick = np.argsort(rng.random((m, width)), axis=1)[:, :min(n, width)]
        np.put_along_axis(keep[:, c0:c0 + width], pick, True, axis=1)
    return np.where(keep, W, F32(0))


def random_packed(src: Source, rng, fmt: str, m: int, k: int, nonfinite=True):
    """(Wp, W): a packed matrix in ``fmt`` and the dense matrix it holds exactly."""
    if fmt == "unstructured":
        W = floats(src, rng, (m, k), nonfinite=nonfinite)
        return sk.pack(W, "unstructured"), W
    if fmt == "act":
        W = floats(src, rng, (m, k), nonfinite=nonfinite, zeros=True)
        return sk.pack(W, "act"), W
    n, mm = (int(t) for t in fmt.split(":"))
    W = nm_weights(src, rng, m, k, n, mm, nonfinite)
    return sk.pack(W, fmt, prune=False), W


def valid_arrays(src: Source, rng, fmt: str, m=None, k=None):
    """(shape, writable copies of the arrays of a valid ``fmt`` matrix, dense)."""
    if fmt == "unstructured" and m is None and src.below(24) == 0:
        m, k = 1 + src.below(3), src.pick([65535, 65536, 65537, 70000])   # int32 col_idx
        W = np.zeros((m, k), F32)
        idx = rng.integers(0, k, 8)
        W[0, idx] = rng.standard_normal(8).astype(F32)
        Wp = sk.pack(W, "unstructured")
    else:
        m = dim(src) if m is None else m
        k = dim(src) if k is None else k
        Wp, W = random_packed(src, rng, fmt, m, k)
    return Wp.shape, {name: np.array(a) for name, a in packed_arrays(Wp).items()}, W


def packed_arrays(Wp) -> dict:
    """The arrays a packed matrix stores, through its public properties."""
    if isinstance(Wp, sk.UnstructuredMatrix):
        return {"row_ptr": Wp.row_ptr, "col_idx": Wp.col_idx, "values": Wp.values}
    if isinstance(Wp, sk.NMMatrix):
        return {"values": Wp.values, "meta": Wp.meta}
    if isinstance(Wp, sk.ActMatrix):
        return {"wt": Wp.wt, "norms": Wp.norms}
    if isinstance(Wp, sk.ConvWeight):
        return packed_arrays(Wp.matrix)
    raise TypeError(type(Wp))


# -- mutations ---------------------------------------------------------------------------------

def mutate_array(src, a, objects: bool = True):
    """One mutation of array ``a``: an entry set or nudged, entries swapped, the length or
    shape changed, another dtype, order, view, alignment or container. (A mutation that
    does not apply to what ``a`` has become leaves it as it is.)"""
    try:
        return _mutate_array(src, np.array(a), objects)
    except Exception:
        return a


def _mutate_array(src, a, objects):
    op = src.below(22)
    flat = a.reshape(-1)
    if op <= 4 and a.size:                       # set an entry
        i = src.below(a.size)
        if a.dtype.kind in "f":
            flat = flat.copy()
            flat[i] = src.pick([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, 65536.0, 0.5])
        else:
            val = src.pick(INTS) if src.chance(5) else src.below(256)
            wide = np.uint64 if val > 2**63 - 1 else np.int64
            flat = flat.astype(wide) if a.dtype.kind in "iub" else flat.copy()
            flat[i] = val
        return flat.reshape(a.shape)
    if op <= 7 and a.size:                       # nudge an entry
        i = src.below(a.size)
        flat = flat.astype(np.int64) if a.dtype.kind in "iub" else flat.copy()
        flat[i] += src.pick([-3, -2, -1, 1, 2, 3])
        return flat.reshape(a.shape)
    if op == 8 and a.size > 1:                   # swap neighbours
        i = src.below(a.size - 1)
        flat = flat.copy()
        flat[[i, i + 1]] = flat[[i + 1, i]]
        return flat.reshape(a.shape)
    if op == 9:                                  # shorter
        return a[:-1] if src.chance(4) or a.ndim < 2 else a[:, :-1]
    if op == 10:                                 # longer
        if a.ndim == 0:
            return a
        ax = 0 if src.chance(4) or a.ndim < 2 else 1
        extra = np.take(a, [-1], axis=ax) if a.shape[ax] else np.zeros_like(np.take(a, [], axis=ax))
        return np.concatenate([a, extra], axis=ax) if extra.size or a.ndim else a
    if op == 11:
        return a.astype(src.pick(DTYPES))
    if op == 12:
        return np.asfortranarray(a)
    if op == 13:                                 # a strided view
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype) if a.ndim else a
        if a.ndim:
            big[..., ::2] = a
            return big[..., ::2]
        return a
    if op == 14:
        a.setflags(write=False)
        return a
    if op == 15:                                 # misaligned
        raw = np.zeros(a.nbytes + 1, np.uint8)
        out = raw[1:].view(a.dtype).reshape(a.shape) if a.dtype.itemsize and a.nbytes else a
        out[...] = a
        return out
    if op == 16:
        return src.pick([a.reshape(-1), a.reshape(1, -1), a[None],
                         np.array(flat[0] if a.size else 0)])
    if op == 17:
        return np.zeros((0,) * max(1, a.ndim), src.pick([a.dtype, np.float64, np.int64]))
    if op == 18:
        return a.tolist()
    if op == 19 and objects:
        return src.pick([None, "abc", 3, a.astype(object), [[1, 2], [3]], {"a": 1}, b"\x00"])
    if op == 20:
        return a.astype(a.dtype.newbyteorder())
    if op == 21 and a.ndim == 2:
        return np.ascontiguousarray(a.T) if src.chance(4) else a.T
    return a


def mutate_shape(src, shape):
    try:
        return _mutate_shape(src, list(shape))
    except Exception:
        return shape


def _mutate_shape(src, shape):
    op = src.below(12)
    i = src.below(len(shape)) if shape else 0
    if op <= 3 and shape:
        shape[i] = int(shape[i]) + src.pick([-2, -1, 1, 2])
    elif op == 4 and shape:
        shape[i] = src.pick(INTS + [-1, -5])
    elif op == 5 and len(shape) > 1:
        shape[0], shape[1] = shape[1], shape[0]
    elif op == 6 and shape:
        shape[i] = src.pick([float(shape[i]), shape[i] + 0.5, True, "3", None, np.int64(shape[i]),
                             np.uint64(shape[i]), np.float64(shape[i])])
    elif op == 7:
        shape.append(src.pick([1, 2]))
    elif op == 8 and shape:
        shape.pop()
    elif op == 9:
        return np.array(shape, src.pick([np.int64, np.uint16, np.float64]))
    elif op == 10:
        return src.pick([None, "shape", 5, [shape], {"a": 1}])
    return tuple(shape) if src.chance(6) else shape


# -- checking an accepted packed matrix ---------------------------------------------------------

def check_packed(src: Source, rng, Wp, v: Verdict, what: str, roundtrip: bool = True) -> None:
    """Wp (accepted for ``v``) reports the right shape and format, holds v.dense, keeps
    its arrays read-only for good, and multiplies right on every variant."""
    want_type = {"unstructured": sk.UnstructuredMatrix, "act": sk.ActMatrix,
                 "conv2d": sk.ConvWeight}.get(v.fmt, sk.NMMatrix)
    if type(Wp) is not want_type:
        raise Finding(f"{what}: built a {type(Wp).__name__}, expected {want_type.__name__}")
    if tuple(Wp.shape) != v.shape or Wp.format != v.fmt:
        raise Finding(f"{what}: reports shape {Wp.shape} format {Wp.format!r}, "
                      f"expected {v.shape} {v.fmt!r}")
    if v.conv is not None and Wp.inner_format != v.conv:
        raise Finding(f"{what}: inner format {Wp.inner_format!r}, expected {v.conv!r}")
    for name, a in packed_arrays(Wp).items():
        check_frozen(a, f"{what}: stored array {name!r}")
    if v.dense is None:
        check_empty_products(Wp, what)
        return
    D = Wp.to_dense()
    if not same_array(D, v.dense):
        raise Finding(f"{what}: to_dense() differs from the arrays it was built from")
    if isinstance(Wp, sk.ConvWeight):
        check_conv_products(src, rng, Wp, v.dense, what)
    else:
        check_products(src, rng, Wp, v.dense, what)
    if roundtrip:
        check_roundtrip(Wp, what)


def check_frozen(a, what: str) -> None:
    """No array on a's .base chain can be made writeable (the C kernels trust them)."""
    node = a
    while isinstance(node, np.ndarray):
        if node.flags.writeable:
            raise Finding(f"{what} is writeable")
        try:
            node.setflags(write=True)
        except ValueError:
            pass
        else:
            node.setflags(write=False)
            raise Finding(f"{what}: an array on its .base chain can be made writeable again")
        node = node.base


def check_empty_products(Wp, what: str) -> None:
    """Matrices too large to expand densely: the products with no columns (no rows) still
    have the right shapes."""
    if isinstance(Wp, sk.ConvWeight):
        return
    m, k = Wp.shape
    for name, Y in on_each_variant(Source(b""), lambda: sk.matmul(Wp, np.zeros((k, 0), F32)),
                                   f"{what}: matmul with X ({k}, 0)"):
        if not isinstance(Y, np.ndarray) or Y.shape != (m, 0) or Y.dtype != F32:
            raise Finding(f"{what} [{name}]: matmul with X ({k}, 0) gave {getattr(Y, 'shape', Y)}")


def work_ok(*dims) -> bool:
    return math.prod(max(int(d), 1) for d in dims) <= 4_000_000


def in_float32_range(W: np.ndarray, k: int) -> bool:
    """Products of W with the inputs below (|x| <= ~1e7) cannot overflow float32: the
    reference sums in float64 and would not overflow where the kernels rightly do."""
    finite = np.abs(W[np.isfinite(W)])
    return not finite.size or float(finite.max()) * 1e7 * max(k, 1) < 1e36


def check_products(src: Source, rng, Wp, W: np.ndarray, what: str) -> None:
    m, k = W.shape
    if not in_float32_range(W, k):
        return
    n = src.pick([1, 1, 2, 3, 5, 8, 17, 64, 70])
    if not work_ok(k, n) or not work_ok(m, k, n):
        n = 1 if work_ok(m, k) else 0
    X = floats(src, rng, (k, n))
    for name, Y in on_each_variant(src, lambda: sk.matmul(Wp, X), f"{what}: matmul"):
        check_result(name, Y, f"{what}: matmul", reference.assert_matmul, W, X)
    if isinstance(Wp, sk.ActMatrix) and n:
        t = float(src.pick([0.0, 0.1, 1.0]))
        x = np.ascontiguousarray(X.T)
        for name, Y in on_each_variant(src, lambda: sk.linear(x, Wp, threshold=t),
                                       f"{what}: linear threshold={t}"):
            check_result(name, Y, f"{what}: linear", reference.assert_act_linear, x, W,
                         threshold=t)


def check_conv_products(src: Source, rng, Wc, W4: np.ndarray, what: str) -> None:
    co, cg, kh, kw = W4.shape
    if not in_float32_range(W4, cg * kh * kw):
        return
    h, w = kh + src.below(4), kw + src.below(4)
    if not work_ok(co, cg, kh, kw, h, w):
        return
    x = floats(src, rng, (1, cg, h, w))
    for name, Y in on_each_variant(src, lambda: sk.conv2d(x, Wc), f"{what}: conv2d"):
        check_result(name, Y, f"{what}: conv2d", reference.assert_conv2d, x, W4)


def check_roundtrip(Wp, what: str) -> None:
    """pickle and save/load give back an equal matrix."""
    import io
    import pickle

    back = pickle.loads(pickle.dumps(Wp))
    if not (back == Wp):
        raise Finding(f"{what}: a pickle round trip changed the matrix")
    buf = io.BytesIO()
    sk.save(buf, Wp)
    buf.seek(0)
    if not (sk.load(buf) == Wp):
        raise Finding(f"{what}: a save/load round trip changed the matrix")


def build_and_check(src: Source, rng, build, v: Verdict, what: str, caller_arrays=()):
    """build() under verdict v; when accepted, check the matrix (and that it does not
    share memory with ``caller_arrays``: they are overwritten before the products)."""
    from _harness import Unchanged, call

    guard = Unchanged(**{f"arg{i}": a for i, a in enumerate(caller_arrays)})
    try:
        Wp = call(build, v.valid, f"{what} ({v.why or 'valid'})")
    except Rejected:
        guard.check(what)
        return None
    guard.check(what)
    for a in caller_arrays:            # a matrix must not depend on the caller's arrays
        if isinstance(a, np.ndarray) and a.flags.writeable and a.size:
            a[...] = np.iinfo(a.dtype).max if a.dtype.kind in "iu" else (
                True if a.dtype.kind == "b" else np.nan)
    check_packed(src, rng, Wp, v, what)
    return Wp
