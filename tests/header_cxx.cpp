// header_cxx.cpp - include/clloss.h as a C++11 program sees it: built with
// -Wall -Wextra -pedantic -Werror (tests/CMakeLists.txt), with nothing but
// the header (which needs only CL/cl.h of the OpenCL headers), it uses every
// *_DESC_INIT and CLLOSS_BUFFER[_NONE], and calls the C library through the
// header's extern "C". test_descriptors.c runs it: exit status 0 when every
// value is what the header promises.
#include <clloss.h>

int main() {
  int bad = 0;
  const clloss_cross_entropy_desc ce = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  const clloss_nll_loss_desc nll = CLLOSS_NLL_LOSS_DESC_INIT;
  const clloss_softmax_desc sm = CLLOSS_SOFTMAX_DESC_INIT;
  const clloss_pointwise_desc pw =
      CLLOSS_POINTWISE_DESC_INIT(CLLOSS_HUBER_LOSS);
  bad += ce.struct_size != sizeof ce || ce.target_type != CLLOSS_INT64 ||
         ce.ignore_index != -100 || ce.grad_scale != 1.0f ||
         ce.padding != CLLOSS_PADDING_AUTO;
  bad += nll.struct_size != sizeof nll || nll.grad_scale != 1.0f ||
         nll.reduction != CLLOSS_REDUCTION_MEAN;
  bad += sm.struct_size != sizeof sm || sm.input_type != CLLOSS_FLOAT32;
  bad += pw.struct_size != sizeof pw || pw.loss != CLLOSS_HUBER_LOSS ||
         pw.delta != 1.0f || pw.grad_scale != 1.0f;

  const clloss_buffer none = CLLOSS_BUFFER_NONE;
  cl_mem mem = nullptr;
  const clloss_buffer whole = CLLOSS_BUFFER(mem);
  bad += none.mem != nullptr || none.offset != 0 || whole.offset != 0;

  // OpenCL's errors are negative, clloss's own positive.
  const clloss_status cl_error =
      static_cast<clloss_status>(CL_OUT_OF_RESOURCES);
  bad += !(cl_error < 0) || CLLOSS_INVALID_ARGUMENT < 0;

  // The C library through extern "C": the reference on one row of two
  // equal logits gives log 2.
  clloss_cross_entropy_desc d = ce;
  d.rows = 1;
  d.classes = 2;
  const float x[2] = {3.0f, 3.0f};
  const int64_t t = 1;
  float loss = 0.0f;
  bad += clloss_reference_cross_entropy(&d, x, &t, nullptr, nullptr, &loss,
                                        nullptr) != CLLOSS_SUCCESS;
  const float err = loss - 0.693147181f;
  bad += !(err < 1e-7f && err > -1e-7f);
  const char *name = clloss_status_name(CLLOSS_INVALID_TARGET);
  bad += name == nullptr || name[7] != 'I'; // "CLLOSS_INVALID_TARGET"
  return bad;
}
