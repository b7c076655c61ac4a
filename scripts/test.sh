#!/usr/bin/env bash
# scripts/test.sh: the README's test command. On a fresh Debian/Ubuntu machine it installs what the
# project needs (scripts/setup.sh --no-build), then:
#   1. builds with warnings as errors into build-test/ and runs the whole CTest suite;
#   2. builds the whole suite with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/
#      and runs it again;
#   3. runs the fuzz smoke of the message decoders when clang's libFuzzer is available;
#   4. installs the release build into a scratch prefix (cmake --install) and trains one small
#      epoch with the installed fedvim from another folder.
# Exit status: 0 only if every step passed.
# Options: --fast skips the sanitizer and fuzz steps (for a quick local check).
set -euo pipefail
cd "$(dirname "$0")/.."
fast=0
[[ ${1:-} == --fast ]] && fast=1
jobs=$(nproc 2>/dev/null || echo 2)

echo "== setup (packages and data sets)"
bash scripts/setup.sh --no-build --test-deps

echo "== build (warnings are errors) and test"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DFEDVIM_WERROR=ON >/dev/null
cmake --build build-test -j"$jobs"
ctest --test-dir build-test --output-on-failure -j"$jobs"

echo "== install check"
inst=$(mktemp -d)
trap 'rm -rf "$inst"' EXIT
cmake --install build-test --prefix "$inst/prefix" >/dev/null
( cd "$inst" && FEDVIM_DATA="$OLDPWD/data" "$inst/prefix/bin/fedvim" train --model lenet5 --limit 512 \
    --test-limit 512 --epochs 1 --json | tail -n 1 | grep -q '"test_accuracy"' ) ||
  { echo "the installed fedvim did not train (cmake --install build-test --prefix DIR)" >&2; exit 1; }
[[ -f $inst/prefix/share/fedvim/experiments/default.ini ]] || { echo "install: default.ini missing" >&2; exit 1; }

if [[ $fast == 0 ]]; then
  echo "== ASan + UBSan build and test"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFEDVIM_WERROR=ON -DFEDVIM_SANITIZE=ON -DFEDVIM_CUDA=OFF >/dev/null
  cmake --build build-asan -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" -E '_bench$'
  if [[ -x fuzz/smoke.sh ]]; then
    echo "== fuzz smoke"
    bash fuzz/smoke.sh
  fi
fi
echo "== all tests passed"
