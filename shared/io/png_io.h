/* png_io.h: PNG reading and writing through libpng, and image grids for previews and attack
 * results. Not here: any image processing.
 */
#ifndef FV_PNG_IO_H
#define FV_PNG_IO_H
#include <stdint.h>

#include "fv_common.h"

/* Write an 8-bit image, channels 1 (grey) or 3 (RGB), pixels in HWC order, atomically.
 * Returns 0 or -1 with e set. */
FV_MUST_USE int fv_png_write(const char *path, const uint8_t *hwc, int w, int h, int channels, fv_err *e);

/* Read a PNG into 8-bit HWC pixels (caller frees *pix). Palette, 16-bit and alpha are converted
 * (palette expanded, 16-bit reduced to the high byte, alpha dropped without compositing): the
 * result has 1 channel for grey inputs and 3 for colour inputs. Images above 1,000,000 pixels a
 * side or files above 256 MiB are refused. Malformed or truncated files (including a missing
 * IEND or a CRC mismatch in a critical chunk) return -1 with e naming the file; *pix is untouched
 * on failure. */
FV_MUST_USE int fv_png_read(const char *path, uint8_t **pix, int *w, int *h, int *channels, fv_err *e);

/* Tile n CHW uint8 images (each c x h x w, c = 1 or 3) into a grid with `cols` columns (fewer
 * when n < cols) and a 1-pixel white separator between tiles (empty cells are white too), and
 * write it as PNG with c channels (all images in one call share c). Size: cols*w + cols-1 by
 * rows*h + rows-1. Returns 0 or -1. */
FV_MUST_USE int fv_png_grid(const char *path, const uint8_t *const *imgs, int n, int c, int h, int w, int cols,
                fv_err *e);

#endif
