"""reference.py is the only reference: a lint over tests/**/*.py but tests/fuzz (like
stumpy's check_naive), plus checks of the reference itself on hand-computed values."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import reference
from reference import assert_linear, assert_matmul, tolerance

TESTS = Path(__file__).resolve().parent
ALLOWED = {"reference.py"}
SKIPPED_DIRS = {"fuzz", "__pycache__"}  # the fuzz targets check against reference.py on their own

# names that announce a home-made reference (test functions themselves are exempt)
REF_NAME = re.compile(r"(^|_)(ref|refs|reference|naive|oracle|brute)(_|$)"
                      r"|dense_(matmul|mm|product|linear|dot)", re.IGNORECASE)
# dense products: only reference.py may compute one
PRODUCT_CALLS = {"matmul", "dot", "einsum", "tensordot", "inner", "vdot", "multi_dot", "outer",
                 "kron"}
# one seeded Generator per test: no global numpy random state
RANDOM_OK = {"default_rng", "Generator", "SeedSequence", "PCG64"}


def _dotted(node) -> str:
    """'np.linalg.multi_dot' for the expression np.linalg.multi_dot, '' if not a name chain."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id] + parts[::-1])
    return ""


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if not node.name.startswith("test_") and REF_NAME.search(node.name):
                out.append(f"{where}: defines {node.name!r}, which looks like a reference")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "numpy":
            bad = [a.name for a in node.names if a.name in PRODUCT_CALLS]
            if bad:
                out.append(f"{where}: imports {bad} from numpy; use reference.py")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name, owner = node.func.attr, _dotted(node.func.value)
            if name in PRODUCT_CALLS and (owner.split(".")[0] in ("np", "numpy", "scipy")
                                          or name in ("dot", "einsum")):
                out.append(f"{where}: calls {owner or '<expr>'}.{name}() (a dense product); "
                           "use reference.py")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            sides = [node.left, node.right]
            if not any(isinstance(s, ast.Name) and s.id.startswith("Wp") for s in sides):
                out.append(f"{where}: '@' without a packed matrix (named Wp...) on either side; "
                           "dense products belong in reference.py")
        elif isinstance(node, ast.Attribute) and _dotted(node.value) in ("np.random",
                                                                         "numpy.random"):
            if node.attr not in RANDOM_OK:
                out.append(f"{where}: np.random.{node.attr}: global numpy random state; use "
                           "the rng fixture / np.random.default_rng(seed)")
    return out


def test_no_other_reference_in_tests():
    """Only reference.py computes expected products."""
    files = sorted(p for p in TESTS.rglob("*.py") if p.name not in ALLOWED
                   and not set(p.relative_to(TESTS).parts[:-1]) & SKIPPED_DIRS)
    assert len(files) >= 5
    assert {p.relative_to(TESTS).parts[0] for p in files} >= {"kernels", "formats", "ops"}
    problems = [v for p in files for v in _violations(p)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("snippet", [
    "def matmul_ref(W, X):\n    return W @ X\n",
    "def naive(W, X):\n    pass\n",
    "Y = np.matmul(W, X)\n",
    "Y = W.dot(X)\n",
    "Y = np.einsum('mk,kn->mn', W, X)\n",
    "expected = W.astype(float) @ X\n",
    "from numpy import dot\n",
    "Y = scipy.linalg.blas.sgemm(1, W, X) if False else np.linalg.multi_dot([W, X])\n",
    "def dense_matmul(W, X):\n    pass\n",
    "np.random.seed(0)\n",
    "x = np.random.rand(3)\n",
])
def test_lint_catches(tmp_path, snippet):
    p = tmp_path / "test_bad.py"
    p.write_text("import numpy as np\n" + snippet)
    assert _violations(p), snippet


def test_lint_allows_api_use(tmp_path):
    p = tmp_path / "test_ok.py"
    p.write_text("import numpy as np\nrng = np.random.default_rng(1)\nY = Wp @ X\n"
                 "Z = np.ones(3) @ Wp\nY = sk.matmul(Wp, X)\nE = reference.matmul(W, X)\n"
                 "def restore_state():\n    pass\ndef expected_isas():\n    pass\n"
                 "def test_reference_is_ok():\n    pass\n")
    assert _violations(p) == []


# -- the reference itself ------------------------------------------------------------------

def test_tolerance_grows_with_k():
    ks = [0, 1, 8, 100, 10_000, 1_000_000]
    tols = [tolerance(k) for k in ks]
    assert tols == sorted(tols) and tols[0] == tols[1]
    assert tolerance(1) < 1e-5 and tolerance(1_000_000) < 1e-3
    assert tolerance(10_000) == pytest.approx(reference.C_TOL * 100 * reference.EPS32
                                              + 2 * reference.EPS32)


def test_nonfinite_semantics_by_hand():
    inf, nan = np.inf, np.nan
    W = np.array([[0.0, 1.0], [2.0, 0.0], [1.0, 1.0], [-2.0, 0.0]])
    X = np.array([[inf, 1.0, inf], [1.0, nan, -inf]])
    Y = reference.matmul(W, X)
    expected = np.array([[nan, nan, nan],     # 0*inf; 1*nan; 0*inf
                         [inf, nan, nan],     # 2*inf; 0*nan; 0*-inf
                         [inf, nan, nan],     # inf+1; nan; inf-inf
                         [-inf, nan, nan]])
    np.testing.assert_array_equal(Y, expected)


def test_reference_shapes_by_hand():
    W = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_array_equal(reference.matmul(W, [1.0, 1.0]), [3, 7, 0])
    stacked = reference.matmul(W, np.array([[[1.0], [0.0]], [[0.0], [1.0]]]))
    np.testing.assert_array_equal(stacked[..., 0], [[1, 3, 0], [2, 4, 0]])
    np.testing.assert_array_equal(reference.linear([[1.0, 1.0]], W, [1.0, 1.0, 1.0]),
                                  [[4, 8, 1]])
    assert reference.matmul(np.zeros((2, 0)), np.zeros((3, 0, 4))).shape == (3, 2, 4)
    np.testing.assert_array_equal(reference.linear(np.zeros((5, 0)), np.zeros((2, 0)), [1, 2]),
                                  [[1, 2]] * 5)


def test_assert_matmul_is_strict_enough():
    rng = np.random.default_rng(7)
    k = 1000
    W = rng.standard_normal((4, k)).astype(np.float32)
    X = rng.standard_normal((k, 3)).astype(np.float32)
    Y = reference.matmul(W, X).astype(np.float32)
    assert_matmul(Y, W, X)
    scale = np.abs(W).astype(np.float64).sum(1).mean()  # ~ magnitude of |W| @ |X| / |x|
    # an error of 100 x tolerance on one entry is caught
    bad = Y.copy()
    bad[1, 2] += np.float32(100 * tolerance(k) * scale)
    with pytest.raises(AssertionError, match="outside tolerance"):
        assert_matmul(bad, W, X)
    # wrong dtype, shape, NaN or inf pattern are caught
    with pytest.raises(AssertionError, match="dtype"):
        assert_matmul(Y.astype(np.float64), W, X)
    with pytest.raises(AssertionError, match="shape"):
        assert_matmul(Y[:, :2], W, X)
    nan = Y.copy()
    nan[0, 0] = np.nan
    with pytest.raises(AssertionError, match="NaN pattern"):
        assert_matmul(nan, W, X)
    inf = Y.copy()
    inf[0, 0] = np.inf
    with pytest.raises(AssertionError, match="inf pattern"):
        assert_matmul(inf, W, X)
    # an empty row must be exactly zero (scale 0)
    W[2] = 0
    Y = reference.matmul(W, X).astype(np.float32)
    Y[2, 0] = 1e-30
    with pytest.raises(AssertionError, match="outside tolerance"):
        assert_matmul(Y, W, X)


def test_assert_linear_checks_bias():
    W = np.eye(3, dtype=np.float32)
    x = np.ones((2, 3), np.float32)
    b = np.array([1, 2, 3], np.float32)
    assert_linear(np.array([[2, 3, 4]] * 2, np.float32), x, W, b)
    with pytest.raises(AssertionError):
        assert_linear(np.array([[1, 1, 1]] * 2, np.float32), x, W, b)
