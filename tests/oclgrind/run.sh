#!/usr/bin/env bash
# run.sh - the "portable" suite under Oclgrind (./run oclgrind), on clloss's
# CPU paths (Oclgrind's own device, which reports CPU|GPU) and GPU paths
# (libclloss_gpu_shim.so makes it report CL_DEVICE_TYPE_GPU alone), with
# Oclgrind's data-race detector and API checks. Any Oclgrind report, or any
# failed test, fails the run; reports are summarised by kernel and source
# line, with the first test call that triggered each.
#
# Usage: tests/oclgrind/run.sh BUILD_DIR [--uninitialized] [cpu] [gpu]
#   --uninitialized  also Oclgrind's uninitialised-value checks.
# Programs are built with -cl-opt-disable (OCLGRIND_BUILD_OPTIONS): Oclgrind
# 21.10 cannot run LLVM's llvm.experimental.noalias.scope.decl, which the
# -O2 inliner emits for helpers returning a struct (clCreateKernel then
# fails), and aborts on `freeze` under --uninitialized.
# Both paths: 64 compute units (so that split cuts rows into several
# segments); the GPU path also has work-groups of at most 16 (WG_SIZE 16).
# Logs: BUILD_DIR/oclgrind-{cpu,gpu}.{out,err}.
set -uo pipefail
build=${1:?usage: run.sh BUILD_DIR [--uninitialized] [cpu] [gpu]}
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
uninit=0
paths=()
for a in "$@"; do
  case "$a" in
    --uninitialized) uninit=1 ;;
    cpu | gpu) paths+=("$a") ;;
    *) echo "oclgrind: unknown argument $a" >&2; exit 2 ;;
  esac
done
[ ${#paths[@]} -eq 0 ] && paths=(cpu gpu)

launcher=$(command -v oclgrind) ||
  { echo "oclgrind: not installed (apt-get install oclgrind)" >&2; exit 2; }
# The runtime the `oclgrind` launcher preloads: <prefix>/lib/oclgrind.
rtdir=$(dirname "$(readlink -f "$launcher")")/../lib/oclgrind
rt=$rtdir/liboclgrind-rt.so
shim=$build/tests/libclloss_gpu_shim.so
tests=$build/tests/clloss_tests
for f in "$rt" "$shim" "$tests"; do
  [ -e "$f" ] || { echo "oclgrind: $f is missing" >&2; exit 2; }
done

# Oclgrind names the program input.cl: the parts that program.c puts
# before the loss's own file (clloss__program_sources), then that file.
prefix=(params.h common.cl reduce.cl)
prefix_lines=()
for f in "${prefix[@]}"; do prefix_lines+=("$(wc -l <"$root/kernels/$f")"); done

# Distinct reports of an .err file: kind | kernel | source lines, with a
# count and the first test call (the [case] line before it).
summarise() {
  awk -v files="${prefix[*]}" -v lines="${prefix_lines[*]}" '
    BEGIN { np = split(files, pf, " "); split(lines, pl, " ") }
    function place(line, kernel,   i, src) {
      for (i = 1; i <= np; i++) {
        if (line <= pl[i]) return pf[i] ":" line
        line -= pl[i]
      }
      src = "loss source"
      if (kernel ~ /^ce_/) src = "cross_entropy.cl"
      if (kernel ~ /^nll_/) src = "nll_loss.cl"
      if (kernel ~ /^pw_/) src = "pointwise.cl"
      return src ":" line
    }
    function flush() {
      if (kind == "") return
      key = kind " | " kernel " | " where
      if (!(key in n)) { order[++keys] = key; first[key] = c }
      n[key]++
      kind = ""
    }
    /^\[case\] / { flush(); c = substr($0, 8); next }
    /^[^ \t]/ { flush(); kind = $0; sub(/ at [a-z]+ memory address 0x[0-9a-f]+/, "", kind)
                sub(/ to [a-z]+ memory address 0x[0-9a-f]+/, "", kind)
                kernel = "?"; where = ""; total++; next }
    /Kernel:/ { kernel = $2 }
    /At line [0-9]+/ { match($0, /At line [0-9]+/); p = place(substr($0, RSTART + 8, RLENGTH - 8) + 0, kernel)
                       # A race names two places, in either order: one key.
                       if (where == "") where = p
                       else where = p < where ? p " vs " where : where " vs " p }
    END {
      flush()
      printf "  %d reports in %d places:\n", total, keys
      for (i = 1; i <= keys && i <= 25; i++)
        printf "  %6dx %s\n          first in: %s\n", n[order[i]], order[i], first[order[i]]
    }' "$1"
}

status=0
for path in "${paths[@]}"; do
  out=$build/oclgrind-$path.out err=$build/oclgrind-$path.err
  preload=$rt
  env=(OCLGRIND_COMPUTE_UNITS=64)
  if [ "$path" = gpu ]; then
    preload=$shim:$rt
    env+=(OCLGRIND_MAX_WGSIZE=16)
  fi
  [ $uninit -eq 1 ] && env+=(OCLGRIND_UNINITIALIZED=1)
  start=$SECONDS
  # Oclgrind reports to stderr; the suite's trace of its calls goes there
  # too (CLLOSS_TEST_TRACE), so that each report follows its call. No
  # program cache (it is not keyed on Oclgrind's options), no tuning runs.
  env -u CLLOSS_TEST_DEVICE -u CLLOSS_VARIANT "${env[@]}" \
    OCLGRIND_DATA_RACES=1 OCLGRIND_CHECK_API=1 OCLGRIND_MAX_ERRORS=100000 \
    OCLGRIND_BUILD_OPTIONS=-cl-opt-disable \
    LD_LIBRARY_PATH="$rtdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" LD_PRELOAD="$preload" \
    CLLOSS_CACHE=off CLLOSS_TUNE=off CLLOSS_TEST_TRACE=1 \
    "$tests" portable >"$out" 2>"$err"
  rc=$?
  [ $rc -gt 128 ] && rc="$rc (signal $(kill -l $((rc - 128))))"
  # A report starts with an unindented line; [case] lines are the trace.
  reports=$(grep -v '^\[case\] ' "$err" | grep -c '^[^[:space:]]')
  line="oclgrind $path path: exit status $rc, $(tail -1 "$out"), $reports Oclgrind reports, $((SECONDS - start)) s"
  if [ "$rc" = 0 ] && [ "$reports" -eq 0 ]; then
    echo "$line: clean"
    continue
  fi
  status=1
  echo "$line: FAILED (logs: $out, $err)"
  [ "$reports" -gt 0 ] && summarise "$err"
  if [ "$rc" != 0 ]; then
    # The failed assertions, or where the suite stopped.
    grep -E '^ +[0-9]+\. .*test_portable|Test: .*FAILED' "$out" | head -10 | sed 's/^ */  /'
    grep '^\[case\] ' "$err" | tail -1 | sed 's/^/  last call: /'
  fi
done
exit $status
