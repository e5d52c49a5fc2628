# Writes OUT: one C string per kernel file FILES (names relative to DIR, such
# as common.cl or params.h), keyed by the file's stem, plus a lookup table.
file(WRITE ${OUT} "/* Generated from the kernels directory by cmake/embed_kernels.cmake. */\n")
file(APPEND ${OUT} "#include <stddef.h>\n#include \"kernels.h\"\n")
set(table "")
foreach(f ${FILES})
  get_filename_component(name ${f} NAME_WE)
  file(READ ${DIR}/${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
  file(APPEND ${OUT} "static const char k_${name}[] = {\n${bytes}0};\n")
  string(APPEND table "  {\"${name}\", \"${f}\", k_${name}, sizeof(k_${name}) - 1},\n")
endforeach()
file(APPEND ${OUT} "const clloss__kernel_source clloss__kernel_sources[] = {\n${table}  {NULL, NULL, NULL, 0}};\n")
