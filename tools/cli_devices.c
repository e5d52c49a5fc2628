/* cli_devices.c - `clloss devices`: every OpenCL platform and device with
 * the index that --device and CLLOSS_DEVICE accept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const devices_help =
    "usage: clloss devices\n"
    "\n"
    "Lists every OpenCL platform and device. The number in brackets is the\n"
    "index that `--device I` and the CLLOSS_DEVICE environment variable\n"
    "accept (either also takes a substring of the device or platform name).\n"
    "The default device is marked with '*'.\n";

static const char *type_name(cl_device_type t) {
  if (t & CL_DEVICE_TYPE_GPU)
    return "GPU";
  if (t & CL_DEVICE_TYPE_CPU)
    return "CPU";
  if (t & CL_DEVICE_TYPE_ACCELERATOR)
    return "accelerator";
#ifdef CL_DEVICE_TYPE_CUSTOM
  if (t & CL_DEVICE_TYPE_CUSTOM)
    return "custom";
#endif
  return "other";
}

static void print_device(const clloss_device_info *d, size_t index,
                         int is_default) {
  char global[32], local[32], alloc[32];
  cli_format_bytes(d->global_mem_size, global, sizeof global);
  cli_format_bytes(d->local_mem_size, local, sizeof local);
  cli_format_bytes(d->max_alloc_size, alloc, sizeof alloc);
  printf("  [%zu]%s %s\n", index, is_default ? "*" : " ", d->name);
  printf("       vendor          %s\n", d->vendor);
  printf("       type            %s, %u compute units\n", type_name(d->type),
         (unsigned)d->compute_units);
  printf("       OpenCL C        %s\n", d->opencl_c_version);
  printf("       driver          %s\n", d->driver_version);
  printf("       global memory   %s (max allocation %s)\n", global, alloc);
  printf("       local memory    %s\n", local);
  printf("       work-group      %zu max\n", d->max_work_group_size);
  /* float16 storage needs no extension (vload_half is core OpenCL 1.2);
   * cl_khr_fp16 is half arithmetic, which clloss does not use. */
  printf("       fp16 / fp64     %s / %s (float16 data works on every "
         "device)\n",
         d->has_fp16 ? "yes" : "no", d->has_fp64 ? "yes" : "no");
}

int cli_devices(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (cli_is_help(argv[i])) {
      fputs(devices_help, stdout);
      return CLI_OK;
    }
    return cli_error("devices", CLI_USAGE,
                     "unexpected argument '%s' (see clloss devices --help)",
                     argv[i]);
  }
  clloss_device_info *infos;
  size_t count;
  clloss_status s = cli_list_devices(&infos, &count);
  if (s != CLLOSS_SUCCESS)
    return cli_error("devices", CLI_DATA_ERROR, "cannot list devices: %s",
                     clloss_status_string(s));
  if (count == 0) {
    printf("No OpenCL device found. Install an OpenCL driver (an ICD), for "
           "example pocl-opencl-icd for the CPU; `clloss run --cpu` works "
           "without one.\n");
    return CLI_OK;
  }
  size_t def = (size_t)-1;
  clloss_device_info def_info;
  clloss_status ds = clloss_device_select(NULL, &def_info, &def);
  cl_platform_id platform = NULL;
  int platforms = 0;
  for (size_t i = 0; i < count; i++) {
    if (i == 0 || infos[i].platform != platform) {
      platform = infos[i].platform;
      printf("%sPlatform %d: %s\n", i ? "\n" : "", platforms++,
             infos[i].platform_name);
    }
    print_device(&infos[i], i, ds == CLLOSS_SUCCESS && i == def);
  }
  const char *env = getenv("CLLOSS_DEVICE") ? getenv("CLLOSS_DEVICE") : "";
  if (ds == CLLOSS_SUCCESS)
    printf("\n* default device: %zu%s%s%s\n", def,
           *env ? " (CLLOSS_DEVICE=" : "", env, *env ? ")" : "");
  else
    printf("\nno default device: %s (CLLOSS_DEVICE=%s)\n",
           clloss_status_string(ds), env);
  free(infos);
  return CLI_OK;
}
