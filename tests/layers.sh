#!/bin/bash
# layers.sh OBJECT...: fails when files call each other in a circle. From
# each object's symbols (nm), an edge runs from a file to every file that
# defines a function or object it uses; tsort then finds any loop. The test
# run passes the objects of the library, the MPI layer, the tool and the
# benchmarks (`ctest -R file_layers`); tests and examples are left out.
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# CTest hands each target's objects over as one ;-separated argument.
objects=()
for a in "$@"; do
  IFS=';' read -ra part <<<"$a"
  objects+=("${part[@]}")
done
for o in "${objects[@]}"; do
  dir=${o%%.dir/*}
  key=${dir##*/}:${o#*.dir/}
  key=${key%.o}
  nm --defined-only "$o" | awk -v k="$key" '$2 ~ /^[TDBRS]$/ {print $3, k}' >>"$tmp/defs"
  nm --undefined-only "$o" | awk -v k="$key" '{print $NF, k}' >>"$tmp/uses"
done
awk 'NR == FNR { def[$1] = $2; next }
     ($1 in def) && def[$1] != $2 { print $2, def[$1] }' \
  "$tmp/defs" "$tmp/uses" | sort -u >"$tmp/edges"
if ! tsort "$tmp/edges" >/dev/null 2>"$tmp/loops"; then
  echo "files that call each other in a circle (tsort):" >&2
  cat "$tmp/loops" >&2
  exit 1
fi
edges=$(wc -l <"$tmp/edges")
if [ "${#objects[@]}" -lt 2 ] || [ "$edges" -lt 1 ]; then
  echo "layers: ${#objects[@]} objects and $edges edges: nothing was read" >&2
  exit 1
fi
echo "layers: ${#objects[@]} files, $edges call edges between them, no circle"
[ -n "${CLLOSS_TEST_SUMMARY:-}" ] && echo "file_layers 1 0 0 0" >>"$CLLOSS_TEST_SUMMARY"
exit 0
