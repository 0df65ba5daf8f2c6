"""N:M structured sparsity, the format: packing against reference.nm_mask (K < M, K = M,
K = M + 1), prune=False, invalid patterns and nm_mask arguments, sizes in bytes,
immutability, save/load/pickle, corrupt files and the validated constructor."""
from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

import reference
import sparsekern as sk
from _cases import NM_PATTERNS as PATTERNS
from _cases import make_weights, make_x
from _cases import nm_pruned as _pruned
from _cases import nm_split as _nm


@pytest.mark.parametrize("pattern", PATTERNS)
def test_nm_pack_matches_reference_mask(rng, pattern):
    n, m = _nm(pattern)
    for k in (1, m - 1, m, m + 1, 3 * m + 2):
        W = make_weights(rng, 5, k, pattern="dense")
        W[1, : min(k, 4)] = 2.5                  # ties go to the lower column
        W[2] = 0
        mask = reference.nm_mask(W, n, m)
        np.testing.assert_array_equal(sk.nm_mask(W, n, m), mask)
        Wp = sk.pack(W, pattern)
        assert Wp.format == pattern and isinstance(Wp, sk.NMMatrix)
        assert Wp.pattern == (n, m)
        np.testing.assert_array_equal(Wp.to_dense(), np.where(mask, W, 0))
        assert Wp.shape == (5, k)
        # stored entries inside W: n per full group, min(n, width) in a narrow last group
        full, last = divmod(k, m)
        assert Wp.nnz == 5 * (full * n + min(n, last))
        # prune=False on the pruned matrix packs exactly the same arrays
        assert sk.pack(Wp.to_dense(), pattern, prune=False) == Wp


def test_nm_pack_prune_false(rng):
    W = _pruned(make_weights(rng, 6, 13, pattern="dense"), "2:4")
    W[3, 4:8] = [0, 1, 0, 0]                    # fewer than N nonzeros is fine
    Wp = sk.pack(W, "2:4", prune=False)
    np.testing.assert_array_equal(Wp.to_dense(), W)
    bad = W.copy()
    bad[4, 8:11] = [1, 2, 3]                    # row 4, group 2 has three nonzeros
    bad[5, 0:4] = [1, 2, 3, 4]                  # a later offender is not the one named
    with pytest.raises(ValueError, match=r"row 4, group 2 \(columns 8\.\.11\) has 3 nonzeros"):
        sk.pack(bad, "2:4", prune=False)
    last = W.copy()
    last[0, 12] = 5.0                           # the padded last group (1 real column) is fine
    assert sk.pack(last, "2:4", prune=False).to_dense()[0, 12] == 5.0
    nan = W.copy()
    nan[3, 4] = np.nan                          # row 3, group 1: NaN and 1.0
    with pytest.raises(ValueError, match="finite"):
        sk.pack(nan, "2:4")
    assert np.isnan(sk.pack(nan, "2:4", prune=False).to_dense()[3, 4])


@pytest.mark.parametrize("bad", ["3:3", "0:4", "2:5", "a:b", "4:4", "5:4", "1:32", "2:4:8",
                                 "-1:4", "2:", ":4", "1.5:4"])
def test_nm_invalid_patterns(bad):
    W = np.ones((4, 8), np.float32)
    with pytest.raises(ValueError, match="pattern|format"):
        sk.pack(W, bad)


def test_nm_mask_arguments():
    W = np.ones((2, 8), np.float32)
    with pytest.raises(ValueError, match="M must be 4, 8 or 16"):
        sk.nm_mask(W, 2, 6)
    with pytest.raises(ValueError, match="1 <= N < M"):
        sk.nm_mask(W, 4, 4)
    with pytest.raises(TypeError):
        sk.nm_mask(W, 2.0, 4)
    with pytest.raises(ValueError, match="2-D"):
        sk.nm_mask(np.ones(8), 2, 4)
    with pytest.raises(ValueError, match="finite"):
        sk.nm_mask(np.full((2, 8), np.inf, np.float32), 2, 4)
    with pytest.raises(TypeError, match="prune"):
        sk.pack(W, "2:4", prune="yes")
    with pytest.raises(TypeError):
        sk.pack(W, "2:4", sparsity=0.5)


def test_nm_bytes_2of4_4096(rng):
    """Packed float32 2:4 takes <= 0.57 of the dense bytes (values + 2-bit positions)."""
    W = rng.standard_normal((64, 4096), dtype=np.float32)
    for pattern, bits in (("2:4", 2), ("1:8", 3), ("4:16", 4)):
        n, m = _nm(pattern)
        Wp = sk.pack(W, pattern)
        assert Wp.values.shape == (64, 4096 * n // m) and Wp.values.dtype == np.float32
        assert Wp.meta.dtype == np.uint8 and Wp.meta.shape == (64, 4096 * n // m * bits // 8)
        assert Wp.pos_bits == bits
    Wp = sk.pack(W, "2:4")
    assert Wp.nbytes / W.nbytes <= 0.57
    assert Wp.nbytes == W.nbytes // 2 + W.nbytes // 32


def test_nm_immutable(rng):
    W = make_weights(rng, 5, 12, pattern="dense")
    Wp = sk.pack(W, "2:4")
    for a in (Wp.values, Wp.meta):
        with pytest.raises(ValueError):
            a[...] = 0
        with pytest.raises(ValueError):
            a.setflags(write=True)
    W[...] = 0                       # the packed copy is independent of W
    assert Wp.to_dense().any()


@pytest.mark.parametrize("pattern", ["2:4", "3:8", "5:16"])
def test_nm_save_load_pickle(tmp_path, rng, pattern):
    W = make_weights(rng, 7, 37, pattern="dense")
    Wp = sk.pack(W, pattern)
    path = tmp_path / "w.npz"
    sk.save(path, Wp)
    Wp2 = sk.load(path)
    assert Wp2 == Wp and Wp2.format == pattern and isinstance(Wp2, sk.NMMatrix)
    Wp3 = pickle.loads(pickle.dumps(Wp))
    assert Wp3 == Wp
    X = make_x(rng, 37, 5)
    np.testing.assert_array_equal(Wp3 @ X, Wp @ X)
    assert "NMMatrix 7x37 format='" + pattern in repr(Wp)


def _saved(Wp, **changes) -> io.BytesIO:
    arrays = dict(values=Wp.values, meta=Wp.meta)
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    buf = io.BytesIO()
    np.savez(buf, sparsekern_format=np.array(changes.pop("fmt", Wp.format)),
             shape=np.array(Wp.shape, np.int64), version=np.array(1, np.int64), **arrays)
    buf.seek(0)
    return buf


def test_nm_load_rejects_corrupt_files(rng):
    W = make_weights(rng, 4, 10, pattern="dense")     # 3 groups of 4, the last padded (2 real)
    Wp = sk.pack(W, "2:4")
    sk.load(_saved(Wp))                               # the untouched file loads
    meta = Wp.meta.copy()
    meta[1, 0] = 0b0101                                # row 1, group 0: positions 1, 1
    with pytest.raises(ValueError, match="strictly increasing.*row 1, group 0"):
        sk.load(_saved(Wp, meta=meta))
    meta = Wp.meta.copy()
    meta[2, 0] = 0b0111                                # positions 3, 1: unsorted
    with pytest.raises(ValueError, match="row 2, group 0"):
        sk.load(_saved(Wp, meta=meta))
    meta = Wp.meta.copy()
    meta[0, 1] = (meta[0, 1] & 0xF0) | 0b1110          # last group positions 2, 3 (past col 9)
    vals = Wp.values.copy()
    vals[0, 4:6] = 1.0
    with pytest.raises(ValueError, match="past the last column"):
        sk.load(_saved(Wp, meta=meta, values=vals))
    meta = Wp.meta.copy()
    meta[3, -1] = 0x80                                  # a padding bit set
    with pytest.raises(ValueError, match="padding bits"):
        sk.load(_saved(Wp, meta=meta))
    with pytest.raises(ValueError, match="values must have shape"):
        sk.load(_saved(Wp, values=Wp.values[:, :-1]))
    with pytest.raises(ValueError, match="meta must have shape"):
        sk.load(_saved(Wp, meta=Wp.meta[:, :-1]))
    with pytest.raises(ValueError, match="meta must have shape"):
        sk.load(_saved(Wp, meta=Wp.meta[:-1]))
    with pytest.raises(ValueError, match="bytes"):
        sk.load(_saved(Wp, meta=Wp.meta.astype(np.int16) + 300))
    with pytest.raises(ValueError, match="meta"):
        sk.load(_saved(Wp, meta=Wp.meta.astype(np.float32)))
    with pytest.raises(ValueError, match="exactly the arrays"):
        sk.load(_saved(Wp, meta=None))
    with pytest.raises(ValueError, match="pattern"):
        buf = io.BytesIO()
        np.savez(buf, sparsekern_format=np.array("3:3"), shape=np.array(Wp.shape, np.int64),
                 version=np.array(1, np.int64), values=Wp.values, meta=Wp.meta)
        buf.seek(0)
        sk.load(buf)


def test_nm_constructor_validates(rng):
    Wp = sk.pack(make_weights(rng, 3, 8, pattern="dense"), "2:4")
    assert sk.NMMatrix((3, 8), "2:4", Wp.values, Wp.meta) == Wp
    with pytest.raises(ValueError):
        sk.NMMatrix((3, 9), "2:4", Wp.values, Wp.meta)
    with pytest.raises(ValueError):
        sk.NMMatrix((3, 8), "1:4", Wp.values, Wp.meta)
    with pytest.raises(TypeError):
        sk.NMMatrix((3, 8), "2:4", Wp.values.astype(object), Wp.meta)
    with pytest.raises(ValueError):
        sk.NMMatrix((-1, 8), "2:4", Wp.values, Wp.meta)
