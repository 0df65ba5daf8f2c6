"""The sk.load targets (fuzz_load_<format>.py): the input is the .npz file itself.

The mutator edits archives the way a hand-edit or a corrupted file would (an array's
entries, dtype, shape, order or .npy header bytes; members dropped, duplicated, renamed
or added; the fields' strings; compression) and writes a well-formed zip again, so the
mutations reach sparsekern's checks instead of failing the zip's CRC; now and then it
mutates the raw bytes instead. The oracle reads the file with numpy (np.load,
allow_pickle=False) and judges the arrays with _formats.classify: sk.load must raise
ValueError (only ValueError) or return exactly that matrix, which must then multiply
right on every backend and ISA."""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
import tokenize
import zipfile

import numpy as np

from _harness import (Chooser, Finding, Rejected, Source, byte_mutate, call, make_zip, npy_bytes,
                      sk, zip_members)
from _formats import EITHER, Verdict, check_packed, classify, invalid, mutate_array

FIELDS = ("sparsekern_format", "version", "shape")
NAMES = ["unstructured", "act", "conv2d", "2:4", "1:8", "4:16", "3:4", "0:4", "4:4", "2:3",
         "\u0662:\u0664", " 2:4", "2 : 4", "\t1:8", "", "x" * 300, "UNSTRUCTURED"]
MEMBER_NAMES = ["row_ptr.npy", "col_idx.npy", "values.npy", "meta.npy", "wt.npy", "norms.npy",
                "inner_format.npy", "shape.npy", "version.npy", "sparsekern_format.npy",
                "extra.npy", "values", "dir/values.npy", "values.npy.npy"]


def classify_file(data: bytes) -> Verdict:
    """What the file means: its members read as .npy arrays the way np.load reads them
    (allow_pickle=False), through zipfile (which, unlike np.load, also accepts bytes
    before the archive, as sk.load does)."""
    level, why = True, ""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            if any(not n.endswith(".npy") for n in names):
                return invalid("a member is not a .npy file")
            arrays, versions = {}, set()
            for info in infos:
                with zf.open(info) as f:
                    head = f.read(8)
                    versions.add(head[6:7])
                with zf.open(info) as f:
                    arrays[info.filename[:-4]] = np.lib.format.read_array(f, allow_pickle=False)
            try:
                for info in infos:
                    zf.read(info)
            except Exception:
                # bytes past an array, which neither np.load nor sk.load needs to read,
                # are truncated or fail the CRC
                level, why = EITHER, "a member is corrupt past its array"
    except Exception as e:
        return invalid(f"numpy cannot read it ({type(e).__name__}: {e})")
    if len(set(names)) != len(names):
        level, why = EITHER, "duplicate member names"
    if versions - {b"\x01", b"\x02"}:
        level, why = EITHER, ".npy format version 3"
    for key in FIELDS:
        if key not in arrays:
            return invalid(f"missing {key}")
    fmt, version, shape = (arrays.pop(k) for k in FIELDS)
    if fmt.shape != () or fmt.dtype.kind != "U":
        return invalid(f"format field {fmt.dtype} {fmt.shape}")
    if version.shape != () or version.dtype.kind not in "iub":
        return invalid(f"version field {version.dtype} {version.shape}")
    if version.dtype.kind == "b":
        level, why = EITHER, "a bool version"
    if int(version) != 1:
        return invalid(f"version {int(version)}")
    if shape.ndim != 1 or shape.dtype.kind not in "iu":
        return invalid(f"shape field {shape.dtype} {shape.shape}")
    try:
        name = str(fmt)
    except Exception as e:        # code points past U+10FFFF
        return invalid(f"format field is not text ({type(e).__name__})")
    for key, a in arrays.items():
        if a.dtype.kind == "U" and a.shape == ():
            try:
                str(a)
            except Exception as e:
                return invalid(f"{key} is not text ({type(e).__name__})")
    v = classify(name, tuple(int(d) for d in shape), arrays)
    return v.worst(level, why)


# TODO: sk.load lets these through where a corrupted file must give ValueError (remove each
# once sk.load converts it; the reproducers are in crashes/):
#   tokenize.TokenError  a .npy header cut inside a bracket
#                        (load_unstructured/npy-header-tokenerror)
#   SyntaxError          a .npy descr such as ',i8' (load_conv/npy-descr-syntaxerror)
#   SystemError          a string field with a code point past U+10FFFF, from str() of it
#                        (load_nm/format-field-code-point-past-10ffff)
LEAKED = (tokenize.TokenError, SyntaxError, SystemError)


def test_one_input(data: bytes) -> None:
    try:
        _test_one_input(data)
    except Finding as e:
        if isinstance(e.__cause__, LEAKED) and "sk.load" in str(e):
            return
        raise


def _test_one_input(data: bytes) -> None:
    v = classify_file(data)
    src = Source(hashlib.sha256(data).digest())       # the X values of the products
    rng = src.rng()
    if src.chance(1, 16):                             # now and then from a path
        with tempfile.NamedTemporaryFile(suffix=".npz", delete=False) as f:
            f.write(data)
        try:
            Wp = call(lambda: sk.load(f.name), v.valid,
                      f"sk.load(path) ({v.why or 'valid'})", allowed=(ValueError,))
        except Rejected:
            return
        finally:
            os.unlink(f.name)
    else:
        try:
            Wp = call(lambda: sk.load(io.BytesIO(data)), v.valid,
                      f"sk.load ({v.why or 'valid'})", allowed=(ValueError,))
        except Rejected:
            return
    check_packed(src, rng, Wp, v, f"sk.load of a {v.fmt!r} file {v.shape}")


def mutate(data: bytes, rng) -> bytes | None:
    """One structure-aware edit of an .npz archive (None: let the byte mutator do it)."""
    try:
        return _mutate(data, rng)
    except Exception:          # an edit that does not apply to this archive
        return None


def _mutate(data: bytes, rng) -> bytes | None:
    members = zip_members(data)
    ch = Chooser(rng)
    op = ch.below(12)
    if op == 0 or not members:
        return None
    if op == 1:
        del members[ch.below(len(members))]
    elif op == 2:
        name, blob = members[ch.below(len(members))]
        members.append((ch.pick(MEMBER_NAMES), blob))
    elif op == 3:
        i = ch.below(len(members))
        members[i] = (ch.pick(MEMBER_NAMES), members[i][1])
    elif op == 4:
        i = ch.below(len(members))
        members[i] = (members[i][0], byte_mutate(members[i][1], rng, 1 << 16))
    elif op == 5:
        return make_zip(members, deflate=True)
    else:
        i = ch.below(len(members))
        name, blob = members[i]
        a = np.lib.format.read_array(io.BytesIO(blob), allow_pickle=False)
        if a.dtype.kind == "U" and ch.chance(6):
            b = np.array(ch.pick(NAMES))
            if ch.chance(1, 8):
                b = ch.pick([b.astype("S"), b[None], np.array(3)])
        elif name == "version.npy" and ch.chance(4):
            b = np.array(ch.pick([0, 2, -1, 2**63 - 1, True]))
        else:
            b = np.asarray(mutate_array(ch, a, objects=False))
        if b.dtype.hasobject:
            return None
        members[i] = (name, npy_bytes(b, version=(2, 0) if ch.chance(1, 8) else None))
    return make_zip(members, deflate=ch.chance(1, 8))
