"""The activation-sparsity format ("act", sk.ActMatrix): pack -> to_dense, save/load/pickle,
the constructor, and validation of constructor arguments and of loaded files."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import sparsekern as sk
from _cases import make_weights


def test_format_roundtrip(tmp_path, rng):
    W = make_weights(rng, 6, 9, 0.5)
    Wa = sk.pack(W, "act")
    assert isinstance(Wa, sk.ActMatrix) and Wa.format == "act"
    assert Wa.shape == (6, 9) and Wa.nnz == np.count_nonzero(W)
    assert Wa.nbytes == 4 * 6 * 9 + 4 * 9
    np.testing.assert_array_equal(Wa.to_dense(), W)
    assert Wa.wt.shape == (9, 6) and not Wa.wt.flags.writeable
    assert "act" in repr(Wa)
    p = tmp_path / "w.npz"
    sk.save(p, Wa)
    assert sk.load(p) == Wa
    assert pickle.loads(pickle.dumps(Wa)) == Wa
    assert sk.ActMatrix(Wa.shape, Wa.wt, Wa.norms) == Wa
    assert sk.ActMatrix(Wa.shape, W.T) == Wa
    W64 = W.astype(np.float64)
    W64[0, 0] = np.nan
    assert not sk.pack(W64, "act").finite


def test_format_validation(tmp_path, rng):
    W = make_weights(rng, 6, 9, pattern="dense")
    Wa = sk.pack(W, "act")
    with pytest.raises(ValueError, match="shape"):
        sk.ActMatrix((6, 9), W)
    with pytest.raises(ValueError, match="norms"):
        sk.ActMatrix((6, 9), W.T, Wa.norms * 2)
    with pytest.raises(ValueError, match="norms"):
        sk.ActMatrix((6, 9), W.T, Wa.norms[:5])
    with pytest.raises(TypeError):
        sk.ActMatrix((6, 9), W.T.astype(complex))
    with pytest.raises(ValueError):
        sk.ActMatrix((6, -9), W.T)
    p = tmp_path / "bad.npz"
    np.savez(p, sparsekern_format=np.array("act"), shape=np.array([6, 9]), version=np.array(1),
             wt=W, norms=Wa.norms)
    with pytest.raises(ValueError):
        sk.load(p)
    np.savez(p, sparsekern_format=np.array("act"), shape=np.array([6, 9]), version=np.array(1),
             wt=Wa.wt, norms=Wa.norms + 1)
    with pytest.raises(ValueError, match="norms"):
        sk.load(p)
    np.savez(p, sparsekern_format=np.array("act"), shape=np.array([6, 9]), version=np.array(1),
             wt=Wa.wt)
    assert sk.load(p) == Wa        # norms are recomputed when absent
