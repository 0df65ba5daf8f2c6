"""Every compiled ISA variant of the activation-sparse linear through the C ABI with an
explicit ISA (sk_f32_act_linear_isa, sk_f32_act_delta_isa): leading dimensions larger
than K and M, Y's padding kept, status codes for bad arguments."""
from __future__ import annotations

import numpy as np

import sparsekern as sk
from _cases import make_weights, relu_x
from reference import assert_linear


def test_c_abi_strides_and_errors(c_isa, rng):
    from _capi import addr, c_backend, isa_index

    c = c_backend()
    ffi, lib = c.ffi, c.lib
    m, k, n = 19, 23, 3
    W = make_weights(rng, m, k, pattern="dense")
    Wa = sk.pack(W, "act")
    h = c._act_handle(Wa)
    ldx, ldy = k + 5, m + 3
    X = np.full((n, ldx), np.nan, np.float32)
    x = relu_x(rng, n, k)
    X[:, :k] = x
    Y = np.full((n, ldy), -7.0, np.float32)
    na = ffi.new("int64_t *")
    fp = lambda a: ffi.cast("float *", addr(a))  # noqa: E731
    st = lib.sk_f32_act_linear_isa(isa_index(c_isa), h, n, fp(X), ldx, ffi.NULL, fp(Y), ldy,
                                   0.0, -1, 0, na)
    assert st == 0
    assert na[0] == np.count_nonzero(x)
    assert_linear(Y[:, :m], x, W)
    assert (Y[:, m:] == -7.0).all()
    args = (h, n, fp(X), ldx, ffi.NULL, fp(Y), ldy)
    assert lib.sk_f32_act_linear_isa(isa_index(c_isa), *args, float("nan"), -1, 0, na) == -1
    assert lib.sk_f32_act_linear_isa(isa_index(c_isa), *args, 0.0, -1, 7, na) == -1
    assert lib.sk_f32_act_linear_isa(isa_index(c_isa), h, n, fp(X), k - 1, ffi.NULL, fp(Y), ldy,
                                     0.0, -1, 0, na) == -1
    assert lib.sk_f32_act_linear_isa(isa_index(c_isa), ffi.NULL, n, fp(X), ldx, ffi.NULL, fp(Y),
                                     ldy, 0.0, -1, 0, na) == -1
    xref = np.zeros((n, k), np.float32)
    y = np.zeros((n, m), np.float32)
    assert lib.sk_f32_act_delta_isa(isa_index(c_isa), h, n, fp(X), ldx, fp(xref), fp(y), -1.0,
                                    na) == -1
    assert lib.sk_f32_act_delta_isa(isa_index(c_isa), h, n, fp(X), ldx, fp(xref), fp(y), 0.0,
                                    na) == 0
    assert na[0] == np.count_nonzero(x)
    np.testing.assert_array_equal(xref, x)
    assert_linear(y, x, W)
