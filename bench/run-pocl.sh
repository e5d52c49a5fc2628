#!/usr/bin/env bash
# run-pocl.sh - the CPU (PoCL) benchmark run: start-up latency cold and warm,
# the issue's target shapes against the copy kernel and PyTorch CPU in the
# same run, and the cross_entropy sweep over C for the plot.
#
# Writes JSON lines (one `clloss bench` object each, with a "suite" field)
# to bench/results/pocl-<date>.json and the plot to
# bench/results/pocl-<date>-sweep.png. Not part of CI.
#
#   bench/run-pocl.sh [BUILD_DIR]     (default build-bench; built if missing)
#
# Environment: REPEAT (10), WARMUP (2), THREADS (PyTorch threads, 2),
# DEVICE (clloss device selector, default: the first device),
# SKIP_SWEEP=1, SKIP_TORCH=1, PYTHON (/usr/bin/python3: Debian's, with
# python3-torch).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-bench}
case $build in /*) ;; *) build=$PWD/$build ;; esac
repeat=${REPEAT:-10}
warmup=${WARMUP:-2}
threads=${THREADS:-2}
python=${PYTHON:-/usr/bin/python3}
stamp=$(date -u +%Y%m%d-%H%M)
out_dir=$root/bench/results
out=$out_dir/pocl-$stamp.json
mkdir -p "$out_dir"

say() { printf '\n== %s\n' "$*"; }
die() { printf 'run-pocl.sh: %s\n' "$*" >&2; exit 1; }

if [[ ! -x $build/tools/clloss ]]; then
  say "building into $build"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCLLOSS_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$build" -j "$(nproc)" >/dev/null
fi
clloss=$build/tools/clloss
[[ -x $clloss ]] || die "no clloss binary at $clloss"
"$clloss" bench --help >/dev/null 2>&1 || die "$clloss has no bench command"

dev_args=()
[[ -n ${DEVICE:-} ]] && dev_args=(--device "$DEVICE")

# Program caches: fresh ones for this run, so that "cold" is cold.
cache=$(mktemp -d /tmp/clloss-bench-cache.XXXXXX)
trap 'rm -rf "$cache"' EXIT
export POCL_CACHE_DIR=$cache/pocl CLLOSS_CACHE_DIR=$cache/clloss

# Appends one bench JSON line (stdin, last line) with its suite name.
record() {
  local suite=$1 line
  line=$(tail -n 1)
  [[ $line == \{* ]] || die "no JSON line from clloss bench ($suite)"
  printf '{"suite":"%s",%s\n' "$suite" "${line#\{}" >>"$out"
  printf '%s\n' "$line"
}

# A summary of a JSON line with jq, or the line itself without jq.
show() {
  if command -v jq >/dev/null; then jq -r "$@"; else cat; fi
}

say "machine"
uname -srm
grep -m1 'model name' /proc/cpuinfo || true
echo "cores: $(nproc); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$clloss" devices

# A small shape: the first call's time is then the program build's.
say "start-up: first call of a process, cold caches then warm"
# shellcheck disable=SC2016
for run in cold warm; do
  "$clloss" bench cross_entropy --rows 16 --classes 32000 --repeat 1 \
    --warmup 0 --no-copy --json-only "${dev_args[@]}" |
    record "startup-$run" |
    show --arg run "$run" \
      '"\($run): OpenCL start \(.opencl_init_ms) ms, context \(.context_ms) ms, first call \(.first_call_ms) ms"'
done

say "targets: loss vs copy kernel vs PyTorch CPU ($threads threads)"
cases=(
  "cross_entropy --rows 4096 --classes 32000"
  "cross_entropy --rows 4096 --classes 32000 --dtype bfloat16"
  "cross_entropy --rows 4096 --classes 32000 --dtype float16"
  "nll_loss --rows 4096 --classes 32000"
  "mse_loss --numel 16777216"
  "l1_loss --numel 16777216"
  "huber_loss --numel 16777216"
  "smooth_l1_loss --numel 16777216"
  "binary_cross_entropy_with_logits --numel 16777216"
  "kl_div --numel 16777216"
)
torch_args=()
for c in "${cases[@]}"; do torch_args+=(--case "$c"); done
if [[ -z ${SKIP_TORCH:-} ]]; then
  "$python" "$root/bench/pytorch_cpu.py" --clloss "$clloss" \
    --repeat "$repeat" --warmup "$warmup" --threads "$threads" \
    --bench-args "${dev_args[*]}" --suite targets --out "$out" \
    "${torch_args[@]}"
else
  for c in "${cases[@]}"; do
    # shellcheck disable=SC2086
    "$clloss" bench $c --repeat "$repeat" --warmup "$warmup" --json-only \
      "${dev_args[@]}" | record targets |
      show '"\(.loss) \(.shape) \(.dtype) \(.variant): \(.median_ms) ms, \(.gbps) GB/s, copy \(.copy_gbps), ratio \(.ratio)"'
  done
fi

if [[ -z ${SKIP_SWEEP:-} ]]; then
  say "sweep: cross_entropy float32, N*C about 2^27, GB/s against C"
  for c in 1000 4096 10000 32000 50257 131072; do
    rows=$(((1 << 27) / c))
    "$clloss" bench cross_entropy --rows "$rows" --classes "$c" \
      --repeat "$repeat" --warmup "$warmup" --json-only "${dev_args[@]}" |
      record sweep |
      show '"C=\(.shape[1]) N=\(.shape[0]): \(.median_ms) ms, \(.gbps) GB/s, copy \(.copy_gbps) GB/s, ratio \(.ratio), \(.variant)"'
  done
  "$python" "$root/bench/plot.py" "$out" -o "${out%.json}-sweep.png" ||
    echo "(no plot: see bench/plot.py's message)"
fi

say "done"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "results: $out"
