"""The C library's ISA detection agrees with the kernel's view in /proc/cpuinfo
(numpy's test_cpu_features pattern). Linux x86-64 only."""
from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

from conftest import c_backend_or_none

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/cpuinfo"),
    pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86 only"),
    pytest.mark.skipif(c_backend_or_none() is None, reason="C library not loadable"),
]

AVX2_FLAGS = {"avx2", "fma", "f16c"}
AVX512_FLAGS = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}


def cpuinfo_flags() -> set[str]:
    """Flags common to every CPU listed (the library must run on whichever one it gets)."""
    sets = []
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            sets.append(set(line.split(":", 1)[1].split()))
    if not sets:
        pytest.skip("no flags line in /proc/cpuinfo")
    return set.intersection(*sets)


def expected_isas(flags: set[str]) -> list[str]:
    isas = ["scalar"]
    if AVX2_FLAGS <= flags:
        isas.append("avx2")
        if AVX512_FLAGS <= flags:
            isas.append("avx512")
    return isas


def test_detected_isas_match_cpuinfo():
    flags = cpuinfo_flags()
    detected = c_backend_or_none().isas()
    assert detected == expected_isas(flags), (
        f"library detected {detected}; /proc/cpuinfo has "
        f"{sorted(flags & (AVX2_FLAGS | AVX512_FLAGS | {'avx', 'osxsave'}))}")


@pytest.mark.parametrize("flags,isas", [
    (set(), ["scalar"]),
    ({"avx2", "fma"}, ["scalar"]),
    (AVX2_FLAGS, ["scalar", "avx2"]),
    (AVX2_FLAGS | AVX512_FLAGS - {"avx512vl"}, ["scalar", "avx2"]),
    (AVX512_FLAGS, ["scalar"]),
    (AVX2_FLAGS | AVX512_FLAGS, ["scalar", "avx2", "avx512"]),
], ids=["none", "avx2-no-f16c", "avx2", "avx512-no-vl", "avx512-without-avx2", "all"])
def test_expected_isas_rule(flags, isas):
    """The rule the comparison above uses, pinned."""
    assert expected_isas(flags) == isas
