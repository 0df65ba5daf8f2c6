"""Backend and ISA selection from the environment, each in a fresh interpreter (the C
library reads SPARSEKERN_ISA once, the package reads SPARSEKERN_BACKEND at import)."""
from __future__ import annotations

import json

import pytest

from _subproc import run_python
from conftest import c_backend_or_none

INFO = "import json, sparsekern as sk; print('INFO=' + json.dumps(sk.info()))"
IMPORT_ERR = (
    "try:\n"
    "    import sparsekern\n"
    "except Exception as e:\n"
    "    print('ERR=' + type(e).__name__ + ':' + str(e))\n"
    "else:\n"
    "    print('IMPORTED')\n")

needs_c = pytest.mark.skipif(c_backend_or_none() is None, reason="C library not loadable")


def _info(**env) -> dict:
    proc = run_python(INFO, **env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("INFO=")][-1]
    return json.loads(line[5:])


def _import_error(**env) -> str:
    proc = run_python(IMPORT_ERR, **env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


@needs_c
def test_default_picks_best_isa():
    info = _info(SPARSEKERN_ISA=None, SPARSEKERN_BACKEND=None)
    assert info["backend"] == "c"
    order = ["scalar", "avx2", "avx512", "neon", "wasmsimd"]
    assert info["isa"] == max(info["isas_available"], key=order.index)
    assert info["isas_available"] == sorted(info["isas_available"], key=order.index)
    assert "scalar" in info["isas_available"]


@needs_c
@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512", "neon"])
def test_env_isa_honoured(isa):
    if isa not in c_backend_or_none().isas():
        pytest.skip(f"{isa} not supported on this machine")
    info = _info(SPARSEKERN_ISA=isa, SPARSEKERN_BACKEND="c")
    assert info["isa"] == isa and info["backend"] == "c"
    assert _info(SPARSEKERN_ISA=isa.upper(), SPARSEKERN_BACKEND="c")["isa"] == isa   # any case


@needs_c
@pytest.mark.parametrize("value", ["bogus", "avx", "neon", "wasmsimd", "avx512 "])
def test_env_isa_invalid_raises_on_import(value):
    if value in c_backend_or_none().isas():
        pytest.skip(f"{value} is supported here")
    err = _import_error(SPARSEKERN_ISA=value, SPARSEKERN_BACKEND=None)
    assert err.startswith("ERR=ValueError:"), err
    assert "SPARSEKERN_ISA" in err and repr(value) in err


@needs_c
def test_env_isa_empty_means_default():
    info = _info(SPARSEKERN_ISA="")
    assert info["isa"] == _info(SPARSEKERN_ISA=None)["isa"]


def test_env_backend_numba():
    info = _info(SPARSEKERN_BACKEND="numba")
    assert info["backend"] == "numba" and info["isa"] == "numba"


@needs_c
@pytest.mark.parametrize("value", ["c", "C", " c ", "auto", ""])
def test_env_backend_c(value):
    assert _info(SPARSEKERN_BACKEND=value)["backend"] == "c"


def test_env_backend_invalid():
    err = _import_error(SPARSEKERN_BACKEND="gpu")
    assert err.startswith("ERR=ValueError:") and "SPARSEKERN_BACKEND" in err and "gpu" in err


def test_missing_library_falls_back_to_numba_on_auto(tmp_path):
    info = _info(SPARSEKERN_LIB=str(tmp_path / "nope.so"), SPARSEKERN_BACKEND="auto")
    assert info["backend"] == "numba" and info["backends_available"] == ["numba"]


def test_missing_library_with_backend_c_raises(tmp_path):
    err = _import_error(SPARSEKERN_LIB=str(tmp_path / "nope.so"), SPARSEKERN_BACKEND="c")
    assert err.startswith("ERR=ImportError:") and "libsparsekern" in err


@needs_c
def test_set_isa_then_set_backend_keeps_isa():
    """set_isa is process-wide for the C library; switching backends does not reset it."""
    pytest.importorskip("numba")
    code = ("import sparsekern as sk\n"
            "sk.set_isa('scalar'); sk.set_backend('numba'); sk.set_backend('c')\n"
            "print(sk.info()['isa'])\n")
    proc = run_python(code, SPARSEKERN_BACKEND="c", SPARSEKERN_ISA=None)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "scalar"


def test_conftest_refuses_numba_only_run(tmp_path):
    """Without the C library the suite must stop loudly unless told numba-only is fine."""
    probe = tmp_path / "test_probe.py"
    probe.write_text("def test_probe():\n    pass\n")
    import shutil
    from pathlib import Path

    here = Path(__file__).parent
    for name in ("conftest.py", "_cases.py", "reference.py"):
        shutil.copy(here / name, tmp_path / name)
    code = "import sys, pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', sys.argv[1]]))"
    lib = str(tmp_path / "nope.so")
    refused = run_python(code, str(tmp_path), SPARSEKERN_LIB=lib, SPARSEKERN_BACKEND=None,
                         SPARSEKERN_TEST_ALLOW_NO_C=None)
    assert refused.returncode != 0 and "C library could not be loaded" in refused.stdout + refused.stderr
    allowed = run_python(code, str(tmp_path), SPARSEKERN_LIB=lib, SPARSEKERN_BACKEND=None,
                         SPARSEKERN_TEST_ALLOW_NO_C="1")
    assert allowed.returncode == 0, allowed.stdout[-2000:] + allowed.stderr[-2000:]
    numba_only = run_python(code, str(tmp_path), SPARSEKERN_LIB=lib, SPARSEKERN_BACKEND="numba",
                            SPARSEKERN_TEST_ALLOW_NO_C=None)
    assert numba_only.returncode == 0, numba_only.stdout[-2000:] + numba_only.stderr[-2000:]


@needs_c
def test_env_isa_invalid_with_numba_backend():
    """A bad SPARSEKERN_ISA must fail loudly at import, or at least not break info()."""
    code = ("import json\n"
            "try:\n"
            "    import sparsekern as sk\n"
            "except ValueError as e:\n"
            "    print('IMPORT-ERR ' + str(e))\n"
            "else:\n"
            "    print('INFO=' + json.dumps(sk.info()))\n")
    proc = run_python(code, SPARSEKERN_ISA="bogus", SPARSEKERN_BACKEND="numba")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.strip().splitlines()[-1]
    if out.startswith("IMPORT-ERR"):
        assert "SPARSEKERN_ISA" in out
    else:
        assert json.loads(out[5:])["backend"] == "numba"


def test_library_that_is_not_a_shared_library(tmp_path):
    junk = tmp_path / "libsparsekern.so"
    junk.write_bytes(b"not an ELF file\n")
    err = _import_error(SPARSEKERN_LIB=str(junk), SPARSEKERN_BACKEND="c")
    assert err.startswith("ERR=ImportError:") and "not a loadable shared library" in err


def test_library_that_is_not_libsparsekern():
    try:   # any shared library that is not libsparsekern: numpy's own
        from numpy._core import _multiarray_umath as other
    except ImportError:
        from numpy.core import _multiarray_umath as other
    err = _import_error(SPARSEKERN_LIB=other.__file__, SPARSEKERN_BACKEND="c")
    assert err.startswith("ERR=ImportError:") and "is not libsparsekern" in err
