"""sk.conv2d(x, W, bias, stride, padding, dilation, groups) with dense 4-D weights and
packed ones (unstructured, N:M along C_in), against the float64 reference on every
backend and ISA. Geometry follows torch.nn.functional.conv2d; impossible geometry, bad
arguments and non-finite weights raise ValueError/TypeError; outputs too large to
allocate may also raise MemoryError; the inputs never change."""
from __future__ import annotations

import sys

import numpy as np

from _harness import (Finding, Rejected, Source, Unchanged, check_result, floats, fuzz_main,
                      on_each_variant, present, seed_bytes, sk)
from _formats import PATTERNS, nm_weights, work_ok
import reference

HUGE = [2**31, 2**32 + 1, 2**61, 2**62, 2**63 - 1, 10**9]
BAD_INTS = [0, -1, 1.0, True, "1", None, (1,), (1, 2, 3)]


def pair_or_int(src: Source, values):
    v = src.pick(values)
    return (v, src.pick(values)) if src.chance(2) else v


def pairs(v):
    return v if isinstance(v, tuple) else (v, v)


def test_one_input(data: bytes) -> None:
    src = Source(data)
    rng = src.rng()
    groups = src.pick([1, 1, 1, 2, 3, 4])
    cg = src.pick([1, 1, 2, 3, 4, 5, 8, 0])
    og = src.pick([1, 1, 2, 3, 4, 0])
    if src.chance(1, 6):                   # depthwise
        cg, og = 1, src.pick([1, 2])
    c_in, c_out = cg * groups, og * groups
    kh, kw = 1 + src.below(5), (1 + src.below(5)) if src.chance(6) else None
    kw = kw or kh
    bsz = src.pick([1, 1, 2, 3])
    h, w = src.pick([1, 2, 3, 5, 8, 11, 16, 30]), src.pick([1, 2, 3, 5, 8, 11, 16, 30])
    stride = pair_or_int(src, [1, 1, 1, 2, 2, 3, 4, 7])
    dilation = pair_or_int(src, [1, 1, 1, 1, 2, 3])
    padding = src.pick([0, 0, 0, 1, 2, 3, (1, 0), (0, 2), (3, 1), "same", "valid"])
    valid, huge = True, False
    odd = src.below(32)                    # 0 (exhausted input) is the plain case
    if odd == 31:
        stride, huge = pair_or_int(src, HUGE + [1]), True
    elif odd == 30:
        dilation, huge = pair_or_int(src, HUGE + [1]), True
    elif odd == 29:
        padding, huge = pair_or_int(src, [2**40, 2**62, 10**6, 2**63]), True
    elif odd == 28:
        which = src.pick(["stride", "dilation", "padding", "groups"])
        bad = src.pick(BAD_INTS + (["full", "SAME", -1] if which == "padding" else []))
        if which == "stride":
            stride = bad
        elif which == "dilation":
            dilation = bad
        elif which == "padding":
            padding = -1 if bad == 0 else bad        # (padding 0 is fine)
        else:
            groups = bad if bad not in (1, (1,)) else 0
        valid = None if bad == "SAME" else False   # torch is case-sensitive; sparsekern not
    x_shape = (bsz, c_in, h, w) if not src.chance(1, 6) else (c_in, h, w)
    if odd == 27:
        x_shape, valid = src.pick([(c_in + 1, h, w), (h, w), (1, 1, c_in, h, w)]), False
    # the geometry as torch defines it
    st, dl = pairs(stride), pairs(dilation)
    if valid is not False:
        if padding in ("same", "SAME"):
            if st != (1, 1):
                valid = False
            tot = (dl[0] * (kh - 1), dl[1] * (kw - 1))
        elif padding == "valid":
            tot = (0, 0)
        else:
            p = pairs(padding)
            tot = (2 * p[0], 2 * p[1])
        if valid is not False:
            ho = (h + tot[0] - dl[0] * (kh - 1) - 1) // st[0] + 1
            wo = (w + tot[1] - dl[1] * (kw - 1) - 1) // st[1] + 1
            if ho < 1 or wo < 1:
                valid = False
            elif huge:
                valid = None      # the output may be small, but such extents may be refused
                if not work_ok(bsz, c_out, ho, wo):
                    return
            elif not work_ok(bsz, c_out, ho, wo, cg, kh, kw):
                return
    # the weight, and the dense W4 it holds
    kind = src.pick(["dense", "unstructured", "nm"])
    m2 = (c_out, kh * kw * cg)
    W4 = None
    if kind == "nm" and cg:
        pattern = src.pick(PATTERNS)
        n, mm = (int(t) for t in pattern.split(":"))
        W2 = nm_weights(src, rng, *m2, n, mm, nonfinite=False)   # rows in (ky, kx, ci) order
        W4 = np.ascontiguousarray(W2.reshape(c_out, kh, kw, cg).transpose(0, 3, 1, 2))
        weight = sk.pack(W4, pattern, prune=False) if c_out else None
    else:
        W4 = floats(src, rng, (c_out, cg, kh, kw), nonfinite=False)
        weight = sk.pack(W4, "unstructured") if kind == "unstructured" and c_out and cg else None
    if weight is None:
        kind = "dense"
        weight, W4 = present(src, W4, ["plain", "plain", "float64", "fortran", "strided",
                                       "readonly", "misaligned", "int32"])
    if kind == "dense" and src.chance(1, 16) and W4.size:
        weight = W4.copy()
        weight.reshape(-1)[src.below(W4.size)] = src.pick([np.nan, np.inf, -np.inf])
        valid = False
    if c_out % groups if isinstance(groups, int) and groups > 0 else False:
        valid = False
    x = floats(src, rng, x_shape)
    arg, logical = present(src, x)
    bias = None
    if src.chance(3):
        bias = floats(src, rng, (c_out,), nonfinite=False)
        if src.chance(1, 16):
            bias, valid = np.zeros(c_out + 1, np.float32), False
    what = (f"conv2d(x {x_shape}, {kind} W {(c_out, cg, kh, kw)}, stride={stride}, "
            f"padding={padding!r}, dilation={dilation}, groups={groups}, "
            f"bias {getattr(bias, 'shape', None)})")
    guard = Unchanged(x=arg, weight=weight, bias=bias)
    call = lambda: sk.conv2d(arg, weight, bias, stride=stride, padding=padding,  # noqa: E731
                             dilation=dilation, groups=groups)
    try:
        results = on_each_variant(src, call, what, valid, huge_output=huge)
    except Rejected:
        guard.check(what)
        return
    guard.check(what)
    pad = padding.lower() if isinstance(padding, str) else padding
    b = None if bias is None else np.asarray(bias, np.float32)
    if valid is None and not work_ok(bsz, c_in, h + tot[0], w + tot[1]):
        # the reference pads the input densely: for huge padding only the shape is checked
        for name, Y in results:
            if Y.shape != (bsz, c_out, ho, wo)[1 if len(x_shape) == 3 else 0:]:
                raise Finding(f"{what} [{name}]: output shape {Y.shape}, expected "
                              f"{(bsz, c_out, ho, wo)}")
        return
    for name, Y in results:
        check_result(name, Y, what, reference.assert_conv2d, logical, W4, b, stride, pad,
                     dilation, groups)


def seeds() -> dict:
    return seed_bytes(32, seed=13)


if __name__ == "__main__":
    fuzz_main(sys.modules[__name__])
