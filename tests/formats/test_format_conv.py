"""Conv weights (sk.ConvWeight, format "conv2d"): packing 4-D weights (magnitude pruning,
W never modified), save/load/pickle, rejected files, unsupported inner formats and
non-finite weights."""
from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

import sparsekern as sk
from _cases import make_x


def test_pack_4d_roundtrip_and_pruning(rng):
    W4 = make_x(rng, 16, 8, 3, 3)
    Wc = sk.pack(W4, "unstructured", sparsity=0.9)
    assert isinstance(Wc, sk.ConvWeight) and Wc.shape == (16, 8, 3, 3) and Wc.ndim == 4
    assert Wc.kernel_size == (3, 3) and Wc.format == "conv2d" and Wc.inner_format == "unstructured"
    assert Wc.nnz == W4.size - round(0.9 * W4.size)
    D = Wc.to_dense()
    assert D.shape == W4.shape and D.dtype == np.float32
    kept = D != 0
    np.testing.assert_array_equal(D[kept], W4[kept])
    # magnitude pruning over the whole tensor: every kept |w| >= every pruned |w|
    assert np.abs(W4[kept]).min() >= np.abs(W4[~kept]).max()
    assert Wc.matrix.shape == (16, 72)
    assert "ConvWeight 16x8x3x3" in repr(Wc)
    assert sk.pack(W4, "unstructured").to_dense().tolist() == W4.tolist()


def test_pack_never_modifies_w(rng):
    W4 = make_x(rng, 4, 3, 3, 3)
    before = W4.copy()
    sk.pack(W4, "unstructured", sparsity=0.5)
    np.testing.assert_array_equal(W4, before)


@pytest.mark.parametrize("fmt", ["unstructured", "2:4"])
def test_save_load_pickle(rng, tmp_path, fmt):
    W4 = make_x(rng, 6, 8, 3, 3)
    Wc = sk.pack(W4, fmt)
    path = tmp_path / "w.npz"
    sk.save(path, Wc)
    for back in (sk.load(path), pickle.loads(pickle.dumps(Wc))):
        assert isinstance(back, sk.ConvWeight) and back == Wc
        np.testing.assert_array_equal(back.to_dense(), Wc.to_dense())


def test_load_rejects_bad_conv_file(rng):
    Wc = sk.pack(make_x(rng, 6, 8, 3, 3), "unstructured")
    buf = io.BytesIO()
    sk.save(buf, Wc)
    buf.seek(0)
    with np.load(buf) as z:
        data = {k: z[k] for k in z.files}
    for key, value in (("shape", np.array([6, 8, 2, 3], np.int64)),   # too few columns
                       ("shape", np.array([6, 8, 3], np.int64)),
                       ("inner_format", np.array("conv2d")),
                       ("inner_format", np.array(3))):
        bad = io.BytesIO()
        np.savez(bad, **{**data, key: value})
        bad.seek(0)
        with pytest.raises(ValueError):
            sk.load(bad)


def test_pack_unsupported_conv_format(rng):
    with pytest.raises(ValueError, match="'act' are not supported"):
        sk.pack(make_x(rng, 4, 3, 3, 3), "act")
    with pytest.raises(ValueError, match="unknown format"):
        sk.pack(make_x(rng, 4, 3, 3, 3), "csr")


def test_pack_rejects_nonfinite_conv_weights(rng):
    W4 = make_x(rng, 2, 2, 3, 3)
    W4[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="finite"):
        sk.pack(W4, "unstructured")
