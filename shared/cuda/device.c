/* cuda_device.c: parsing of --device values ("cpu", "cuda", "cuda:N", and for launchers "cuda:N,M"), compiled in every build so
 * that a CPU-only build can still say what it was asked for and why it cannot do it.
 * Not here: anything that touches a GPU (cuda_net.cu, cuda_none.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/net.h"

int fv_device_parse(const char *s, int *device, fv_err *e) {
    if (!s || !*s) return fv_err_set(e, "--device: empty (expected cpu, cuda or cuda:N)");
    if (strcmp(s, "cpu") == 0) {
        *device = -1;
        return 0;
    }
    if (strcmp(s, "cuda") == 0) {
        *device = 0;
        return 0;
    }
    if (strncmp(s, "cuda:", 5) == 0) {
        const char *p = s + 5;
        char *end = NULL;
        if (*p >= '0' && *p <= '9') {
            long v = strtol(p, &end, 10);
            if (*end == 0 && v >= 0 && v < 1024) {
                *device = (int)v;
                return 0;
            }
        }
    }
    return fv_err_set(e, "--device '%s': expected cpu, cuda or cuda:N (N a device number, 0-based)",
                      s);
}

const char *fv_device_name(int device, char *buf, size_t cap) {
    if (device < 0) snprintf(buf, cap, "cpu");
    else snprintf(buf, cap, "cuda:%d", device);
    return buf;
}

int fv_device_list_parse(const char *s, int *devs, int max, int *n, fv_err *e) {
    FV_ASSERT(max >= 1);
    *n = 0;
    if (!s || strncmp(s, "cuda:", 5) != 0 || !strchr(s, ','))
        return fv_device_parse(s, devs, e) == 0 ? (*n = 1, 0) : -1;
    const char *p = s + 5;
    int k = 0;
    for (;;) {
        char *end = NULL;
        if (!(*p >= '0' && *p <= '9')) break;
        long v = strtol(p, &end, 10);
        if (v >= 1024 || (*end != ',' && *end != 0)) break;
        for (int j = 0; j < k; j++)
            if (devs[j] == (int)v) {
                *n = 0;
                return fv_err_set(e, "--device '%s': device %ld is listed twice", s, v);
            }
        if (k == max) {
            *n = 0;
            return fv_err_set(e, "--device '%s': more than %d devices", s, max);
        }
        devs[k++] = (int)v;
        if (*end == 0) {
            *n = k;
            return 0;
        }
        p = end + 1;
    }
    return fv_err_set(e, "--device '%s': expected cpu, cuda, cuda:N or cuda:N,M,... (device numbers, 0-based)", s);
}

int fv_device_check(int device, fv_err *e) {
    if (device < 0) return 0;
    if (!fv_cuda_built())
        return fv_err_set(e, "cuda:%d: this build has no CUDA backend (configure with nvcc available)", device);
    const int n = fv_cuda_device_count();
    if (device >= n) {
        if (n == 0) return fv_err_set(e, "cuda:%d: no CUDA device is available on this machine", device);
        return fv_err_set(e, "cuda:%d: no such device (this machine has %d: cuda:0..cuda:%d)", device, n, n - 1);
    }
    return 0;
}
