/* device.c - enumerating OpenCL devices, querying their capabilities, and
 * choosing the default one (CLLOSS_DEVICE, else the first GPU, else the
 * first device).
 *
 * Enumeration and device queries run under one process-wide lock: drivers
 * initialise themselves on the process's first OpenCL calls, and not all do
 * that safely from several threads at once (PoCL 3.1 crashes in
 * clGetDeviceInfo, or reports no device, when four threads create their
 * first contexts together). */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"

#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001 /* cl_khr_icd */
#endif

#define MAX_PLATFORMS 16
#define MAX_DEVICES 64

static void get_string(cl_device_id d, cl_device_info what, char *out,
                       size_t cap) {
  out[0] = '\0';
  if (clGetDeviceInfo(d, what, cap, out, NULL) != CL_SUCCESS)
    out[0] = '\0';
  out[cap - 1] = '\0';
}

static int has_extension(cl_device_id d, const char *name) {
  size_t size = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &size) != CL_SUCCESS)
    return 0;
  char *ext = malloc(size + 1);
  if (!ext)
    return 0;
  int found = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, size, ext, NULL) == CL_SUCCESS) {
    ext[size] = '\0';
    size_t n = strlen(name);
    for (const char *p = ext; (p = strstr(p, name)) != NULL; p += n)
      if ((p == ext || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
        found = 1;
  }
  free(ext);
  return found;
}

static pthread_mutex_t enumeration = PTHREAD_MUTEX_INITIALIZER;

static clloss_status query_device(cl_platform_id platform, cl_device_id device,
                                  clloss_device_info *info) {
  memset(info, 0, sizeof *info);
  info->platform = platform;
  info->device = device;
  get_string(device, CL_DEVICE_NAME, info->name, sizeof info->name);
  get_string(device, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
  get_string(device, CL_DRIVER_VERSION, info->driver_version,
             sizeof info->driver_version);
  get_string(device, CL_DEVICE_OPENCL_C_VERSION, info->opencl_c_version,
             sizeof info->opencl_c_version);
  if (platform &&
      clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof info->platform_name,
                        info->platform_name, NULL) != CL_SUCCESS)
    info->platform_name[0] = '\0';
  info->platform_name[sizeof info->platform_name - 1] = '\0';
  /* "OpenCL C <major>.<minor> <vendor-specific>" */
  if (sscanf(info->opencl_c_version, "OpenCL C %d.%d", &info->opencl_c_major,
             &info->opencl_c_minor) != 2) {
    info->opencl_c_major = 1;
    info->opencl_c_minor = 0;
  }
  cl_int err = clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof info->type,
                               &info->type, NULL);
  err |= clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_GROUP_SIZE,
                         sizeof info->max_work_group_size,
                         &info->max_work_group_size, NULL);
  err |=
      clGetDeviceInfo(device, CL_DEVICE_LOCAL_MEM_SIZE,
                      sizeof info->local_mem_size, &info->local_mem_size, NULL);
  err |= clGetDeviceInfo(device, CL_DEVICE_GLOBAL_MEM_SIZE,
                         sizeof info->global_mem_size, &info->global_mem_size,
                         NULL);
  err |=
      clGetDeviceInfo(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE,
                      sizeof info->max_alloc_size, &info->max_alloc_size, NULL);
  err |=
      clGetDeviceInfo(device, CL_DEVICE_MAX_COMPUTE_UNITS,
                      sizeof info->compute_units, &info->compute_units, NULL);
  if (err != CL_SUCCESS)
    return CL_INVALID_DEVICE;
  cl_device_fp_config fp64 = 0;
  if (clGetDeviceInfo(device, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64, &fp64,
                      NULL) != CL_SUCCESS)
    fp64 = 0;
  info->has_fp64 = fp64 != 0 || has_extension(device, "cl_khr_fp64");
  info->has_fp16 = has_extension(device, "cl_khr_fp16");
  if (info->max_work_group_size == 0)
    info->max_work_group_size = 1;
  if (info->compute_units == 0)
    info->compute_units = 1;
  return CLLOSS_SUCCESS;
}

clloss_status clloss__query_device(cl_platform_id platform, cl_device_id device,
                                   clloss_device_info *info) {
  pthread_mutex_lock(&enumeration);
  clloss_status s = query_device(platform, device, info);
  pthread_mutex_unlock(&enumeration);
  return s;
}

static clloss_status list_devices(clloss_device_info *infos, size_t capacity,
                                  size_t *count) {
  cl_platform_id platforms[MAX_PLATFORMS];
  cl_uint np = 0;
  cl_int err = clGetPlatformIDs(MAX_PLATFORMS, platforms, &np);
  if (err == CL_PLATFORM_NOT_FOUND_KHR || np == 0)
    return CLLOSS_NO_DEVICE;
  if (err != CL_SUCCESS)
    return err;
  if (np > MAX_PLATFORMS)
    np = MAX_PLATFORMS;
  size_t total = 0;
  for (cl_uint p = 0; p < np; p++) {
    cl_device_id devices[MAX_DEVICES];
    cl_uint nd = 0;
    if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, devices,
                       &nd) != CL_SUCCESS)
      continue;
    if (nd > MAX_DEVICES)
      nd = MAX_DEVICES;
    for (cl_uint d = 0; d < nd; d++, total++)
      if (total < capacity && query_device(platforms[p], devices[d],
                                           &infos[total]) != CLLOSS_SUCCESS)
        return CL_INVALID_DEVICE;
  }
  *count = total;
  return total ? CLLOSS_SUCCESS : CLLOSS_NO_DEVICE;
}

clloss_status clloss_device_list(clloss_device_info *infos, size_t capacity,
                                 size_t *count) {
  if (!count || (capacity && !infos))
    return CLLOSS_INVALID_ARGUMENT;
  *count = 0;
  pthread_mutex_lock(&enumeration);
  clloss_status s = list_devices(infos, capacity, count);
  pthread_mutex_unlock(&enumeration);
  return s;
}

static int contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] &&
           tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
      i++;
    if (i == n)
      return 1;
  }
  return n == 0;
}

clloss_status clloss_device_select(const char *selector,
                                   clloss_device_info *info, size_t *index) {
  if (!selector || !*selector)
    selector = getenv("CLLOSS_DEVICE");
  clloss_device_info all[MAX_DEVICES];
  size_t count = 0;
  clloss_status s = clloss_device_list(all, MAX_DEVICES, &count);
  if (s != CLLOSS_SUCCESS)
    return s;
  if (count > MAX_DEVICES)
    count = MAX_DEVICES;
  size_t pick = count;
  if (selector && *selector) {
    char *end;
    unsigned long v = strtoul(selector, &end, 10);
    if (*end == '\0' && end != selector) {
      pick = v < count ? (size_t)v : count;
    } else {
      for (size_t i = 0; i < count && pick == count; i++)
        if (contains_nocase(all[i].name, selector) ||
            contains_nocase(all[i].platform_name, selector))
          pick = i;
    }
    if (pick == count)
      return CLLOSS_DEVICE_NOT_FOUND;
  } else {
    for (size_t i = 0; i < count && pick == count; i++)
      if (all[i].type & CL_DEVICE_TYPE_GPU)
        pick = i;
    if (pick == count)
      pick = 0;
  }
  if (info)
    *info = all[pick];
  if (index)
    *index = pick;
  return CLLOSS_SUCCESS;
}
