/* cuda_device.c: parsing of --device values ("cpu", "cuda", "cuda:N"), compiled in every build so
 * that a CPU-only build can still say what it was asked for and why it cannot do it.
 * Not here: anything that touches a GPU (cuda_net.cu, cuda_none.c).
 */
#include <stdlib.h>
#include <string.h>

#include "cuda_net.h"

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
