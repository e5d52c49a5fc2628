#!/bin/bash
# snippets.sh README OUTDIR CC [CFLAGS...]: compiles every ```c block of the
# README, so that its examples cannot rot. The line before each block is an
# HTML comment (invisible on the rendered page) giving the block's free
# variables as a parameter list, `<!-- compile: float *logits, size_t n -->`,
# or `<!-- compile mpi: ... -->` for a block that needs MPI's headers, which
# compiles only when CFLAGS holds -DCLLOSS_SNIPPETS_MPI (MPI was found). A
# block becomes the body of `int snippet_K(PARAMS)`, its #include lines
# hoisted above (and clloss_mpi.h for mpi); it must compile with -Wall -Wextra -Werror.
set -u
readme=$1 out=$2 cc=$3
shift 3
mpi=0
for f in "$@"; do [ "$f" = -DCLLOSS_SNIPPETS_MPI ] && mpi=1; done
rm -rf "$out"
mkdir -p "$out"
awk -v out="$out" '
  /^<!-- compile( mpi)?: .* -->$/ {
    kind = ($0 ~ /^<!-- compile mpi:/) ? "mpi" : "c"
    params = $0
    sub(/^<!-- compile( mpi)?: /, "", params)
    sub(/ -->$/, "", params)
    armed = NR
    next
  }
  /^```c$/ {
    k++
    if (armed != NR - 1) { printf "%d\n", NR > (out "/unmarked"); kind = "c"; params = "void" }
    file = sprintf("%s/snippet_%02d.%s.c", out, k, kind)
    body = ""; incs = ""; line = NR + 1; inblock = 1
    next
  }
  inblock && /^```$/ {
    printf "#include <stdint.h>\n#include <stdio.h>\n#include <clloss.h>\n%s%s", kind == "mpi" ? "#include <clloss_mpi.h>\n" : "", incs > file
    printf "#line %d \"README.md\"\nint snippet_%02d(%s);\nint snippet_%02d(%s) {\n%s  return 0;\n}\n", line - 2, k, params, k, params, body > file
    close(file); inblock = 0; armed = 0
    next
  }
  inblock && /^#include/ { incs = incs $0 "\n"; body = body "\n"; next }
  inblock { body = body $0 "\n" }
' "$readme"
rc=0
if [ -s "$out/unmarked" ]; then
  echo "README.md: a C block without a <!-- compile: ... --> line before it, at line(s): $(tr '\n' ' ' <"$out/unmarked")" >&2
  rc=1
fi
n=0 skipped=0
for f in "$out"/snippet_*.c; do
  [ -e "$f" ] || continue
  case $f in *.mpi.c) [ $mpi = 1 ] || { skipped=$((skipped + 1)); continue; } ;; esac
  if "$cc" -std=c11 -Wall -Wextra -Werror -c "$f" -o "${f%.c}.o" "$@"; then
    n=$((n + 1))
  else
    echo "README.md: the C block compiled as $f fails (above)" >&2
    rc=1
  fi
done
[ $n -gt 0 ] || { echo "README.md: no C block found" >&2; rc=1; }
echo "README.md: $n C blocks compiled, $skipped skipped (no MPI)"
# ./run test's tally: name, passed, failed, skipped, passed with a part skipped
[ -n "${CLLOSS_TEST_SUMMARY:-}" ] &&
  echo "readme_snippets $n $((rc != 0)) $skipped 0" >>"$CLLOSS_TEST_SUMMARY"
exit $rc
