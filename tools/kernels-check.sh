#!/usr/bin/env bash
# kernels-check.sh - compiles every program configuration that clloss builds
# (written by clloss_kernel_configs: CONFIG_DIR/configs.txt and <id>.cl) with
# clang for the targets of other OpenCL implementations, at -O0 and -O2.
#
# Usage: tools/kernels-check.sh CONFIG_DIR
# Fails (exit 1) on any error, any warning, or any function the module uses
# without defining it: OpenCL built-ins (mangled _Z... names) and LLVM
# intrinsics are what a driver supplies; an unmangled undefined name is a
# helper of ours that the driver would have to link, and cannot.
#   spir64   the SPIR target (clang-based drivers: Intel, Mesa, PoCL, ...)
#   amdgcn   ROCm's compiler (gfx90a, no device library), object code
#   nvptx64  NVIDIA's PTX back end (at -O2; bitcode at -O0, see below)
# Environment: CLANG, LLVM_NM (default clang-14 / llvm-nm-14, else clang /
# llvm-nm), KERNELS_CHECK_WARN (default "-Wall -Wextra -Wno-unused-parameter":
# every kernel takes the launcher's whole argument list, not every one uses
# all of it), JOBS (default nproc).
set -uo pipefail

if [ "${1:-}" = "--one" ]; then
  # One compilation: --one CONFIG_DIR ID TARGET OPT OPTIONS...
  shift
  dir=$1 id=$2 target=$3 opt=$4
  shift 4
  out="$dir/out/$id.$target$opt"
  # Each target's output, and the functions it leaves undefined: bitcode
  # for spir64 (no back end), an object file for amdgcn, PTX for nvptx64.
  # clang 14's NVPTX back end cannot compile a kernel with a __local pointer
  # argument at -O0 at all ("Cannot cast between two non-generic address
  # spaces", any such kernel, however small): nvptx64 -O0 stops at bitcode.
  # clang 14 also declares no vload_half/vstore_half for nvptx64 with its
  # default built-in declarations (gated on cl_khr_fp16 there, though they
  # are core OpenCL): the full opencl-c.h declares them.
  case "$target$opt" in
    spir64*) flags=(-target spir64-unknown-unknown) out_kind=bc ;;
    amdgcn*) flags=(-target amdgcn-amd-amdhsa -mcpu=gfx90a -nogpulib) out_kind=o ;;
    nvptx64-O0) flags=(-target nvptx64-nvidia-cuda) out_kind=bc ;;
    nvptx64*) flags=(-target nvptx64-nvidia-cuda) out_kind=s ;;
  esac
  [ "$target" = nvptx64 ] && flags+=(-cl-no-stdinc -Xclang -finclude-default-header)
  case $out_kind in
    bc) flags+=(-c -emit-llvm -o "$out.bc") ;;
    o) flags+=(-c -o "$out.o") ;;
    s) flags+=(-S -o "$out.s") ;;
  esac
  undefined_names() {
    case $out_kind in
      bc | o) "$LLVM_NM" --undefined-only "$out.$out_kind" | awk '{print $NF}' ;;
      s) awk '/^\.extern \.func/ {
                for (i = NF; i > 0; i--) if ($i != "(") { print $i; break }
              }' "$out.s" | sed 's/($//' ;;
    esac
  }
  log="$out.log"
  {
    # shellcheck disable=SC2086
    "$CLANG" -x cl "$@" "$opt" $KERNELS_CHECK_WARN "${flags[@]}" "$dir/$id.cl" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
      echo "clang exit status $rc"
    else
      undefined=$(undefined_names | grep -v -e '^_Z' -e '^llvm\.' | sort -u)
      [ -n "$undefined" ] && echo "undefined functions:" $undefined
    fi
  } >"$log"
  rm -f "$out.bc" "$out.o" "$out.s"
  if [ -s "$log" ]; then
    mv "$log" "$out.fail"
  else
    rm -f "$log"
  fi
  exit 0
fi

dir=${1:?usage: kernels-check.sh CONFIG_DIR}
list="$dir/configs.txt"
[ -s "$list" ] || { echo "kernels-check: $list is missing or empty" >&2; exit 2; }
pick() { for c in "$@"; do command -v "$c" >/dev/null && { echo "$c"; return; }; done; }
export CLANG=${CLANG:-$(pick clang-14 clang)}
export LLVM_NM=${LLVM_NM:-$(pick llvm-nm-14 llvm-nm)}
export KERNELS_CHECK_WARN=${KERNELS_CHECK_WARN:--Wall -Wextra -Wno-unused-parameter}
[ -n "$CLANG" ] && [ -n "$LLVM_NM" ] ||
  { echo "kernels-check: clang and llvm-nm are needed (apt-get install clang llvm)" >&2; exit 2; }
targets=(spir64 amdgcn nvptx64)
opts=(-O0 -O2)
rm -rf "$dir/out"
mkdir -p "$dir/out"
start=$SECONDS
# Each distinct program once: configurations of the CPU and GPU paths that
# have the same source and options (most of them) are one program.
declare -A seen=()
distinct="$dir/distinct.txt"
: >"$distinct"
while read -r id options; do
  key="$(sha256sum <"$dir/$id.cl" | cut -c1-16) $options"
  [ -n "${seen[$key]:-}" ] && continue
  seen[$key]=1
  echo "$id $options" >>"$distinct"
done <"$list"
all=$(wc -l <"$list")
configs=$(wc -l <"$distinct")
# One job per program, target and optimisation level (the options hold no
# spaces within an option).
while read -r id options; do
  for t in "${targets[@]}"; do
    for o in "${opts[@]}"; do
      echo "$id $t $o $options"
    done
  done
done <"$distinct" |
  xargs -P "${JOBS:-$(nproc)}" -L 1 "$0" --one "$dir"
jobs=$((configs * ${#targets[@]} * ${#opts[@]}))
shopt -s nullglob
fails=("$dir"/out/*.fail)
echo "kernels-check: $configs distinct programs (of $all configurations) x ${#targets[@]} targets (${targets[*]}) x ${#opts[@]} levels (${opts[*]}) = $jobs compilations in $((SECONDS - start)) s, $CLANG, warnings: $KERNELS_CHECK_WARN"
if [ ${#fails[@]} -eq 0 ]; then
  echo "kernels-check: all clean"
  exit 0
fi
# Per target and level: how many configurations failed, and which
# undefined helpers and diagnostics appear (deduplicated).
for t in "${targets[@]}"; do
  for o in "${opts[@]}"; do
    set -- "$dir"/out/*."$t$o".fail
    [ $# -eq 0 ] && continue
    echo "FAIL $t $o: $# of $configs configurations"
    undefined=$(cat "$@" | sed -n 's/^undefined functions: //p' | tr ' ' '\n' | sort -u | tr '\n' ' ')
    [ -n "$undefined" ] && echo "  undefined: $undefined"
    cat "$@" | grep -E 'warning:|error:' | sed -E 's/^[^ ]*\.cl:[0-9]+:[0-9]+: //' |
      sort | uniq -c | sort -rn | head -5 | sed 's/^/  /'
  done
done
echo "First lines of the first failures (full logs: $dir/out/*.fail):"
for f in "${fails[@]:0:3}"; do
  echo "--- $(basename "$f" .fail)"
  head -8 "$f"
done
exit 1
