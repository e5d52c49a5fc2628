#!/usr/bin/env bash
# gpu-linear.sh - linear_cross_entropy on a lent NVIDIA machine, in one short
# run (see ../shared/device/README.md): sources .devdeps/gpu-env.sh, builds
# the library, tool and tests into a fresh folder, runs the linear and shard
# suites on the NVIDIA OpenCL device, then `clloss bench linear_cross_entropy`
# at the issue's shape (N 2048, H 512, V 32000) with row chunks and with
# vocabulary blocks, fused against unfused. Everything lands in $OUT.
#
#   bash bench/gpu-linear.sh           (device tool: carry [".devdeps"],
#                                       timeout_s about 540)
#
# Output in $OUT: log.txt (everything), summary.txt (one line per step),
# tests-*.log, linear-gpu.json (bench JSON lines). Environment: DEVICE
# (default "nvidia"; the suites match names case-sensitively: TEST_DEVICE,
# default "NVIDIA"), BUDGET_S (default 480), REPEAT (default 10).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
OUT=${OUT:-$root/bench/results/gpu-linear-$(date -u +%Y%m%d-%H%M)}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
device=${DEVICE:-nvidia}
budget=${BUDGET_S:-480}
repeat=${REPEAT:-10}
build=$root/build-gpu-linear
t0=$SECONDS
note() { printf '%-26s %s\n' "$1" "$2" | tee -a "$OUT/summary.txt"; }
left() {
  local r=$((budget - (SECONDS - t0)))
  ((r < 10)) && r=10
  ((r < $1)) && echo "$r" || echo "$1"
}
step() {
  local name=$1 limit=$2 rc=0
  shift 2
  printf '\n== [%3ds] %s\n' $((SECONDS - t0)) "$name"
  timeout --kill-after=10 "$(left "$limit")" "$@" || rc=$?
  if ((rc == 0)); then note "$name" ok; else note "$name" "FAILED (exit $rc)"; fi
}

[[ -f .devdeps/gpu-env.sh ]] && . .devdeps/gpu-env.sh
command -v nvidia-smi >/dev/null && nvidia-smi -L
export POCL_CACHE_DIR=$build/pocl-cache CLLOSS_CACHE_DIR=$build/clloss-cache
rm -rf "$build"
step build 240 bash -c "cmake -S '$root' -B '$build' -DCMAKE_BUILD_TYPE=Release \
  -DCLLOSS_BUILD_EXAMPLES=OFF >'$OUT/build.log' 2>&1 &&
  cmake --build '$build' -j \$(nproc) --target clloss_cli clloss_tests \
  >>'$OUT/build.log' 2>&1" || true
clloss=$build/tools/clloss
"$clloss" devices 2>&1 | tee "$OUT/devices.txt"
grep -qi "$device" "$OUT/devices.txt" || {
  note devices "no '$device' OpenCL device (devices.txt)"
  exit 3
}
for s in linear_cross_entropy cross_entropy_shard; do
  step "tests $s" 150 bash -c "CLLOSS_TEST_DEVICE='${TEST_DEVICE:-NVIDIA}' \
    '$build/tests/clloss_tests' $s >'$OUT/tests-$s.log' 2>&1"
  tail -n 1 "$OUT/tests-$s.log"
  grep -E 'FAILED|skipped' "$OUT/tests-$s.log" | head -n 5
done
for m in "" "--chunk-rows 1024" "--vocab-block 4096" "--vocab-block 8192"; do
  step "bench ${m:-row chunks}" 60 bash -c "set -o pipefail; '$clloss' bench linear_cross_entropy \
    --device '$device' --rows 2048 --hidden 512 --classes 32000 $m \
    --repeat $repeat --warmup 2 | tee -a '$OUT/bench.txt' | tail -n 1 \
    >>'$OUT/linear-gpu.json'"
done
cat "$OUT/bench.txt" 2>/dev/null | grep -v '^{'
note total "$((SECONDS - t0)) s"
