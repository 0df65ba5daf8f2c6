#!/usr/bin/env bash
# count_insns.sh - emulated instruction counts of sparsekern's AArch64 kernels, scalar vs NEON.
#
# There is no ARM hardware: every case runs bench/c/kernel_insns (cross-compiled for
# aarch64, linked to a cross-built libsparsekern.so) under
#   qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu cortex-a72 -plugin tools/qemu_insn_plugin.so
# which counts every guest instruction executed. Each case runs twice, with R=0 and R=K
# measured calls (both after the same warm-up call and the same deterministic setup), so
#   insns/MAC = (insns(R=K) - insns(R=0)) / (K * useful multiply-adds per call)
# counts exactly the instructions of K calls of the public sk_*_isa entry point
# (operator + kernel), nothing of setup, process start or exit.
#
# Usage: tools/count_insns.sh [-b BUILD_DIR] [-l LIB_BUILD_DIR] [-k K] [-n] [-h]
#   -b DIR   where the plugin, the driver and (unless -l) the library are built
#            [/tmp/sk-insns]; the library goes to DIR/lib and is rebuilt incrementally
#            (ninja) on every run, so new kernels in csrc/ are picked up.
#   -l DIR   use an existing aarch64 build of libsparsekern.so in DIR instead (e.g.
#            /tmp/h5-a64); it is re-ninja'd if it has a build.ninja.
#   -k K     measured calls in the second run [2]
#   -n       no self-test of the counter
# Environment: QEMU_CPU [cortex-a72].
# Output: a self-test line, then one row per case:
#   family  shape  n  MACs/call  scalar insns/MAC  neon insns/MAC  ratio (= scalar/neon:
#   > 1 means NEON executes fewer instructions)  check (checksum of y, scalar vs neon)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=/tmp/sk-insns
LIBDIR=
K=2
SELFTEST=1
CPU=${QEMU_CPU:-cortex-a72}
SYSROOT=/usr/aarch64-linux-gnu

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while getopts "b:l:k:nh" o; do
    case $o in
        b) B=$OPTARG ;;
        l) LIBDIR=$OPTARG ;;
        k) K=$OPTARG ;;
        n) SELFTEST=0 ;;
        h) usage 0 ;;
        *) usage 2 ;;
    esac
done
[[ $K =~ ^[1-9][0-9]*$ ]] || { echo "count_insns: -k wants a positive integer" >&2; exit 2; }

log() { echo "count_insns: $*" >&2; }

# ---- tools: install what is missing (Debian/Ubuntu)
need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
[[ -e $SYSROOT/lib/ld-linux-aarch64.so.1 ]] || need+=(libc6-arm64-cross libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v gcc >/dev/null || need+=(gcc)
command -v cmake >/dev/null || need+=(cmake)
command -v ninja >/dev/null || need+=(ninja-build)
if ((${#need[@]})); then
    SUDO=
    if [[ $(id -u) != 0 ]]; then
        command -v sudo >/dev/null || { log "need root or sudo to install: ${need[*]}"; exit 1; }
        SUDO=sudo
    fi
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q "${need[@]}" >&2 ||
        { $SUDO apt-get update -q >&2 && $SUDO apt-get install -y -q "${need[@]}" >&2; }
fi

mkdir -p "$B"
B=$(cd "$B" && pwd)

# ---- the plugin (host shared object; its qemu_plugin_* symbols resolve against the
# qemu-aarch64 executable, which exports them)
PLUGIN=$B/qemu_insn_plugin.so
gcc -O2 -Wall -Wextra -shared -fPIC -o "$PLUGIN" "$ROOT/tools/qemu_insn_plugin.c"

# ---- the library
if [[ -z $LIBDIR ]]; then
    LIBDIR=$B/lib
    if [[ ! -f $LIBDIR/build.ninja ]]; then
        cmake -S "$ROOT" -B "$LIBDIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
            -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/toolchains/aarch64-linux-gnu.cmake" >"$B/cmake.log" 2>&1 ||
            { cat "$B/cmake.log" >&2; exit 1; }
    fi
fi
LIBDIR=$(cd "$LIBDIR" && pwd)
if [[ -f $LIBDIR/build.ninja ]]; then
    ninja -C "$LIBDIR" >"$B/ninja.log" 2>&1 || { cat "$B/ninja.log" >&2; exit 1; }
fi
[[ -f $LIBDIR/libsparsekern.so ]] || { log "no libsparsekern.so in $LIBDIR"; exit 1; }

# ---- the driver
DRIVER=$B/kernel_insns
aarch64-linux-gnu-gcc -std=c11 -O2 -Wall -Wextra -I "$ROOT/csrc/include" \
    -o "$DRIVER" "$ROOT/bench/c/kernel_insns.c" \
    -L "$LIBDIR" -lsparsekern -Wl,-rpath,"$LIBDIR" -lm

QEMU=(qemu-aarch64 -L "$SYSROOT" -cpu "$CPU")
OUT=$B/insns.$$
trap 'rm -f "$OUT"' EXIT

# count PROGRAM ARGS...: prints the guest instruction count of one run
count() {
    rm -f "$OUT"
    "${QEMU[@]}" -plugin "$PLUGIN,outfile=$OUT" "$@" >"$B/last.stdout" 2>"$B/last.stderr" || {
        log "failed: ${QEMU[*]} $*"; cat "$B/last.stderr" >&2; return 1; }
    local word n
    read -r word n <"$OUT"
    [[ $word == insns && $n =~ ^[0-9]+$ ]] || { log "bad plugin output: $(cat "$OUT")"; return 1; }
    echo "$n"
}

# ---- self-test: a loop of 9 instructions per iteration (7 nop, subs, b.ne)
if ((SELFTEST)); then
    cat >"$B/selftest_loop.c" <<'EOF'
#include <stdlib.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 0;
    __asm__ volatile("cbz %0, 2f\n1:\n\tnop\n\tnop\n\tnop\n\tnop\n\tnop\n\tnop\n\tnop\n\t"
                     "subs %0, %0, #1\n\tb.ne 1b\n2:\n" : "+r"(n) :: "cc");
    return 0;
}
EOF
    aarch64-linux-gnu-gcc -O2 -o "$B/selftest_loop" "$B/selftest_loop.c"
    c0=$(count "$B/selftest_loop" 0)
    c1=$(count "$B/selftest_loop" 1000000)
    d=$((c1 - c0))
    # atol of a 7-digit string adds a few dozen instructions; allow 0.01%
    if ((d < 9000000 || d > 9000900)); then
        log "SELF-TEST FAILED: 10^6 iterations of a 9-instruction loop counted $d (expected ~9000000)"
        exit 1
    fi
    echo "self-test: 10^6 x 9-instruction loop -> $d instructions (expected 9000000 + atol noise); process baseline $c0"
fi

# ---- the cases: family | shape label | n | driver arguments
CASES=(
    "unstructured|4096x4096 d=0.1|1|rows=4096 cols=4096 density=0.1 n=1"
    "unstructured|4096x4096 d=0.1|64|rows=4096 cols=4096 density=0.1 n=64"
    "unstructured|4096x4096 d=0.1 +panels|64|rows=4096 cols=4096 density=0.1 n=64 panels=1"
    "nm|2:4 1024x1024|1|nm=2:4 rows=1024 cols=1024 n=1"
    "nm|2:4 1024x1024|64|nm=2:4 rows=1024 cols=1024 n=64"
    "nm|1:4 1024x1024|1|nm=1:4 rows=1024 cols=1024 n=1"
    "nm|1:4 1024x1024|64|nm=1:4 rows=1024 cols=1024 n=64"
    "nm|1:8 1024x1024|1|nm=1:8 rows=1024 cols=1024 n=1"
    "nm|1:8 1024x1024|64|nm=1:8 rows=1024 cols=1024 n=64"
    "act|4096x4096 x 90% zero|1|rows=4096 cols=4096 zero=0.9 n=1"
    "conv|3x3 64->64 56x56 d=0.1|1|batch=1 cin=64 cout=64 h=56 w=56 k=3 stride=1 pad=1 density=0.1"
)

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$B/last.stdout"; }

echo "qemu-aarch64 -cpu $CPU, K=$K, library $LIBDIR/libsparsekern.so"
echo "MACs/call: unstructured nnz*n; nm stored slots (padding excluded)*n; act nactive*rows;"
echo "conv stored taps x in-image output pixels (exact, padding excluded)."
fmt="%-13s %-27s %3s %11s %12s %12s %7s  %s\n"
printf "$fmt" family shape n MACs/call "scalar i/MAC" "neon i/MAC" ratio check
t_start=$SECONDS
for c in "${CASES[@]}"; do
    IFS='|' read -r fam shape n args <<<"$c"
    declare -A ipm=() cks=()
    macs=
    for isa in scalar neon; do
        # shellcheck disable=SC2086
        i0=$(count "$DRIVER" "$fam" "$isa" 0 $args)
        # shellcheck disable=SC2086
        i1=$(count "$DRIVER" "$fam" "$isa" "$K" $args)
        m=$(field macs)
        [[ $(field status) == 0 && -n $m ]] || { log "bad driver output: $(cat "$B/last.stdout")"; exit 1; }
        if [[ -n $macs && $m != "$macs" ]]; then log "MACs differ between ISAs ($macs vs $m)"; fi
        macs=$m
        cks[$isa]=$(field checksum)
        ipm[$isa]=$(awk -v a="$i0" -v b="$i1" -v k="$K" -v m="$m" \
            'BEGIN { printf "%.3f", (b - a) / (k * m) }')
    done
    ratio=$(awk -v s="${ipm[scalar]}" -v v="${ipm[neon]}" 'BEGIN { r = (v > 0) ? s / v : 0; printf "%.2f", r }')
    check=$(awk -v a="${cks[scalar]}" -v b="${cks[neon]}" 'BEGIN {
        d = a - b; if (d < 0) d = -d; s = (a < 0 ? -a : a) + (b < 0 ? -b : b) + 1;
        ok = (d / s < 1e-3); if (ok) print "ok"; else print "MISMATCH(" a " vs " b ")" }')
    printf "$fmt" "$fam" "$shape" "$n" "$macs" "${ipm[scalar]}" "${ipm[neon]}" "$ratio" "$check"
    unset ipm cks
done
echo "($((SECONDS - t_start)) s; insns/MAC = (insns(R=$K) - insns(R=0)) / ($K * MACs/call))"
