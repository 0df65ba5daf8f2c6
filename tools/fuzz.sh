#!/usr/bin/env bash
# Fuzz the format loaders and the public ops (tests/fuzz/fuzz_*.py) with atheris, one
# target after the other, from the committed corpus (tests/fuzz/corpus/, read only).
#
#   tools/fuzz.sh                      CI budget: 8 s per target (about 2.5 minutes)
#   tools/fuzz.sh --budget 600         600 s per target
#   tools/fuzz.sh --runs 100000        the long run: 10^5 executions per target
#   tools/fuzz.sh --targets load_nm,conv2d --budget 60
#   tools/fuzz.sh --replay build/fuzz/conv2d/crash-...   a saved input, once
#
# New inputs and reproducers go to build/fuzz/<target>/; exits 1 on any finding. atheris
# is pip-installed (--target, nothing machine-wide) into $SK_FUZZ_SITE when this Python
# lacks it. With SPARSEKERN_LIB set, the source tree is tested with that library;
# otherwise the installed sparsekern. See tools/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SITE=${SK_FUZZ_SITE:-/tmp/sk-fuzz/site}

if ! $PY -c "import atheris" 2>/dev/null; then
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    if ! $PY -c "import atheris" 2>/dev/null; then
        echo "fuzz.sh: installing atheris into $SITE"
        $PY -m pip install -q --disable-pip-version-check --target "$SITE" "atheris>=2.3" ||
            echo "fuzz.sh: atheris could not be installed; the targets run on the random engine"
    fi
fi
exec $PY tests/fuzz/run.py "$@"
