# Writes OUT: the file IN as the C string fm_kernels_source.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){12})" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT} "/* Generated from examples/fashion_mnist/kernels.cl. */\n"
  "const char fm_kernels_source[] = {\n${bytes}0};\n")
