/* gpu_shim.c - an LD_PRELOAD library for ./run oclgrind: the device reports
 * CL_DEVICE_TYPE_GPU alone, so that clloss takes its GPU paths (vector
 * widths, group variant and launch shapes, split segments of work-groups)
 * on Oclgrind, which reports CPU|GPU|ACCELERATOR|DEFAULT and so gets the
 * CPU paths. Everything else is Oclgrind's: the shim is preloaded before
 * liboclgrind-rt.so and forwards to it (RTLD_NEXT). Test tooling only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>

#include <CL/cl.h>

typedef cl_int (*get_device_info_fn)(cl_device_id, cl_device_info, size_t,
                                     void *, size_t *);

CL_API_ENTRY cl_int CL_API_CALL clGetDeviceInfo(cl_device_id device,
                                                cl_device_info param,
                                                size_t size, void *value,
                                                size_t *size_ret) {
  static get_device_info_fn next;
  if (!next) {
    void *sym = dlsym(RTLD_NEXT, "clGetDeviceInfo");
    memcpy(&next, &sym, sizeof next);
  }
  if (!next)
    return CL_INVALID_PLATFORM;
  cl_int err = next(device, param, size, value, size_ret);
  if (err == CL_SUCCESS && param == CL_DEVICE_TYPE && value &&
      size >= sizeof(cl_device_type)) {
    const cl_device_type gpu = CL_DEVICE_TYPE_GPU;
    memcpy(value, &gpu, sizeof gpu);
  }
  return err;
}
