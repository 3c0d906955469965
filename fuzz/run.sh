#!/usr/bin/env bash
# Runs fuzz targets one after another and keeps libFuzzer's final figures.
#
#   fuzz/run.sh RUNS SECONDS [TARGET...]   (default: every target)
#
# Each target starts from its committed seeds (fuzz/corpus/TARGET, read
# only) and grows a scratch corpus in fuzz/work/TARGET; it stops after RUNS
# executions or SECONDS, whichever comes first. Logs: fuzz/work/TARGET.log.
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# FUZZ_SANITIZER (default none, as the figures in docs/reliability.md; or
# address) picks the build; none shares fuzz/ci.sh's build.
set -euo pipefail
cd "$(dirname "$0")"
runs=${1:?runs}
secs=${2:?seconds}
shift 2
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(envelope frame canonical policy tooldef client_config sql shell redact hook)
mkdir -p work
for t in "${targets[@]}"; do
    mkdir -p "work/$t"
    start=$(date +%s)
    cargo +nightly fuzz run -O -s "${FUZZ_SANITIZER:-none}" "$t" "work/$t" "corpus/$t" -- \
        -runs="$runs" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"work/$t.log" 2>&1 || echo "$t: FAILED (see fuzz/work/$t.log)"
    echo "$t: $(( $(date +%s) - start ))s wall; $(grep -E '^#[0-9]+[[:space:]]+DONE' "work/$t.log" | tail -1)"
done
