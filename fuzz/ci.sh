#!/usr/bin/env bash
# CI's bounded fuzz step: builds every target with libFuzzer on a pinned
# nightly (no cargo-fuzz needed) and runs each one for a few seconds from
# its committed corpus, so that a regression a seed or a short mutation
# reaches fails CI. The long runs are fuzz/run.sh (see docs/reliability.md).
#
#   fuzz/ci.sh [SECONDS_PER_TARGET] [TARGET...]    (default 15 s, every target)
#
# The toolchain is LATCH_FUZZ_TOOLCHAIN (default the pinned nightly below);
# when no toolchain of that name is installed but `nightly` is that same
# build, `nightly` is used, else the pinned one is installed with rustup.
# Exits non-zero when a target fails; a failing input is copied to
# fuzz/artifacts/TARGET/ and its path printed.
set -euo pipefail
cd "$(dirname "$0")"

pin=nightly-2026-05-20
pin_commit=e50aa6fba # rustc's commit in that nightly
secs=${1:-15}
[[ $# -gt 0 ]] && shift
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(envelope frame canonical policy tooldef client_config sql shell redact hook)

say() { printf '==> fuzz/ci.sh: %s\n' "$*" >&2; }

# libFuzzer itself is C++ (built by libfuzzer-sys).
if ! command -v c++ >/dev/null && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    say "installing g++ (Debian package) to build libFuzzer"
    apt-get install -y -qq g++ >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq g++; }
fi
command -v c++ >/dev/null || { say "a C++ compiler (c++) is needed to build libFuzzer"; exit 1; }

tc=${LATCH_FUZZ_TOOLCHAIN:-}
if [[ -z $tc ]]; then
    if rustc "+$pin" -V >/dev/null 2>&1; then
        tc=$pin
    elif rustc +nightly -V 2>/dev/null | grep -q "($pin_commit "; then
        tc=nightly
    else
        say "installing $pin (minimal profile)"
        if rustup toolchain install "$pin" --profile minimal; then
            tc=$pin
        elif rustc +nightly -V >/dev/null 2>&1; then
            # No way to the toolchain server: the nightly this machine has
            # still builds the targets (its findings may differ slightly).
            say "could not install $pin; using the installed nightly ($(rustc +nightly -V))"
            tc=nightly
        else
            say "no nightly toolchain: install $pin with rustup to run the fuzz targets"
            exit 1
        fi
    fi
fi

# The flags cargo-fuzz passes (coverage counters, comparison tracing,
# `cfg(fuzzing)`), without a sanitizer (the targets are safe Rust) and with
# cargo's default codegen units, which build faster than cargo-fuzz's one.
# Its own target folder (fuzz/target/ci), so it never rebuilds
# `cargo fuzz`'s.
host=$(rustc "+$tc" -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
-Cllvm-args=-sanitizer-coverage-stack-depth"
start=$(date +%s)
say "building ${#targets[@]} targets with $tc ($(rustc "+$tc" -V))"
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
cargo "+$tc" build --manifest-path Cargo.toml --target "$host" --target-dir target/ci --release \
    --config 'profile.release.debug="line-tables-only"' --locked "${bins[@]}"
say "built in $(( $(date +%s) - start )) s"

out=target/ci/$host/release
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t/corpus" "$scratch/$t/artifacts"
    t0=$(date +%s)
    # The committed corpus is read only; new units go to the scratch one.
    if "$out/$t" "$scratch/$t/corpus" "corpus/$t" -max_total_time="$secs" -timeout=25 \
        -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$scratch/$t/artifacts/" >"$scratch/$t.log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$t.log")
        say "$t: ok, ${execs:-?} executions in $(( $(date +%s) - t0 )) s"
    else
        failed+=("$t")
        tail -40 "$scratch/$t.log" >&2
        mkdir -p "artifacts/$t"
        for a in "$scratch/$t/artifacts/"*; do
            [[ -e $a ]] || continue
            cp "$a" "artifacts/$t/"
            say "$t: FAILED on fuzz/artifacts/$t/$(basename "$a") (add it to fuzz/corpus/$t/ with the fix)"
        done
    fi
done
say "total $(( $(date +%s) - start )) s"
[[ ${#failed[@]} -eq 0 ]] || { say "failed: ${failed[*]}"; exit 1; }
