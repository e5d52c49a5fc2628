#!/usr/bin/env bash
# linear.sh - `clloss run linear_cross_entropy` on every fixture of
# tests/data/linear (small shapes: both methods, float16, probabilities,
# class weights, ignored rows, grad_scale) under Oclgrind with its
# data-race detector and API checks, on clloss's CPU and GPU paths as
# run.sh sets them up. Any Oclgrind report or failed run fails it.
#
# Usage: tests/oclgrind/linear.sh BUILD_DIR [cpu] [gpu]    (about 1 minute)
# The GPU path allows work-groups of 64 (run.sh's portable suite: 16):
# CLBlast's GEMM kernels are built for 64 work-items and refuse a device
# that offers fewer (CL_INVALID_WORK_GROUP_SIZE, which clloss reports).
# The fixtures' values are checked by the cli_linear_cross_entropy suite and
# tests/data/linear_cross_entropy.py; here only Oclgrind's verdict counts.
set -uo pipefail
build=${1:?usage: linear.sh BUILD_DIR [cpu] [gpu]}
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
paths=("$@")
[ ${#paths[@]} -eq 0 ] && paths=(cpu gpu)
launcher=$(command -v oclgrind) ||
  { echo "oclgrind: not installed (apt-get install oclgrind)" >&2; exit 2; }
rtdir=$(dirname "$(readlink -f "$launcher")")/../lib/oclgrind
fx=$root/tests/data/linear
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for path in "${paths[@]}"; do
  preload=$rtdir/liboclgrind-rt.so
  env=(OCLGRIND_COMPUTE_UNITS=64)
  if [ "$path" = gpu ]; then
    preload=$build/tests/libclloss_gpu_shim.so:$preload
    env+=(OCLGRIND_MAX_WGSIZE=64)
  fi
  while IFS='|' read -r name opts; do
    case "$name" in \#* | '') continue ;; esac
    name=${name// /}
    args=(--input "$fx/$name.x.npy" --linear-weight "$fx/$name.w.npy"
      --target "$fx/$name.t.npy" --loss-out "$tmp/l.npy"
      --grad-out "$tmp/dx.npy" --grad-weight-out "$tmp/dw.npy")
    [ -e "$fx/$name.b.npy" ] &&
      args+=(--linear-bias "$fx/$name.b.npy" --grad-bias-out "$tmp/db.npy")
    [ -e "$fx/$name.weight.npy" ] && args+=(--weight "$fx/$name.weight.npy")
    # shellcheck disable=SC2086
    env -u CLLOSS_DEVICE "${env[@]}" OCLGRIND_DATA_RACES=1 \
      OCLGRIND_CHECK_API=1 OCLGRIND_MAX_ERRORS=1000 \
      OCLGRIND_BUILD_OPTIONS=-cl-opt-disable \
      LD_LIBRARY_PATH="$rtdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
      LD_PRELOAD="$preload" CLLOSS_CACHE=off CLLOSS_TUNE=off \
      "$build/tools/clloss" run linear_cross_entropy "${args[@]}" $opts \
      >"$tmp/out" 2>"$tmp/err"
    rc=$?
    reports=$(grep -c '^[^[:space:]]' "$tmp/err")
    echo "oclgrind $path $name:$opts: exit $rc, $reports reports"
    if [ $rc -ne 0 ] || [ "$reports" -ne 0 ]; then
      status=1
      head -n 30 "$tmp/err"
    fi
  done <"$fx/cases.txt"
done
exit $status
