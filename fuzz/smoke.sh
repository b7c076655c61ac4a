#!/usr/bin/env bash
# fuzz/smoke.sh: build the libFuzzer harnesses with clang (ASan + UBSan) and fuzz each decoder for a
# few seconds (about 20 s in all). Exit status 0 only when no harness found a crash, a leak or
# undefined behaviour. Usage: fuzz/smoke.sh [SECONDS_PER_HARNESS] (default 10).
# Findings are written to build-fuzz/findings/ (crash-*, leak-*): rerun one with
#   build-fuzz/fuzz_envelope build-fuzz/findings/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
if ! command -v clang >/dev/null; then
  echo "fuzz smoke: clang is not installed (apt-get install clang libclang-rt-dev)" >&2
  exit 1
fi
mkdir -p build-fuzz
if ! { cmake -S . -B build-fuzz -DFEDVIM_FUZZ=ON -DFEDVIM_TESTS=OFF -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug &&
       cmake --build build-fuzz -j"$(nproc 2>/dev/null || echo 2)" --target fuzz_envelope fuzz_text; } \
     >build-fuzz/build.log 2>&1; then
  echo "fuzz smoke: the clang build failed:" >&2
  grep -E "error|Error" build-fuzz/build.log | head -20 >&2
  exit 1
fi
mkdir -p build-fuzz/findings build-fuzz/corpus/envelope build-fuzz/corpus/text
# a few seeds so the fuzzer starts from well-formed inputs
printf '\x00\x00\x00' > build-fuzz/corpus/envelope/empty
printf '\x00[fl]\nrounds = 3\n[data]\ndataset = synthetic\n' > build-fuzz/corpus/text/config
printf '\x01fedvim-key 1\nkind identity-secret\ncurve-public 00\n' > build-fuzz/corpus/text/key
status=0
for h in envelope text; do
  echo "fuzz smoke: fuzz_$h for ${secs}s"
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      build-fuzz/fuzz_$h -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix=build-fuzz/findings/ -print_final_stats=1 build-fuzz/corpus/$h 2>build-fuzz/fuzz_$h.log; then
    echo "fuzz smoke: fuzz_$h FOUND A PROBLEM (log: build-fuzz/fuzz_$h.log)" >&2
    tail -40 build-fuzz/fuzz_$h.log >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" build-fuzz/fuzz_$h.log | tail -2
  fi
done
exit $status
