#include "tessera_vips.h"
#include <stdio.h>
#include <jpeglib.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

struct error_mgr {
    struct jpeg_error_mgr base;
    jmp_buf jump;
};

static void on_error(j_common_ptr cinfo) {
    struct error_mgr *e = (struct error_mgr *) cinfo->err;
    longjmp(e->jump, 1);
}

int tsr_jpeg_encode_rgb(const uint8_t *pixels, int width, int height, int row_stride, int quality,
                        int chroma_subsample, uint8_t **out, size_t *len, char *error, size_t error_len) {
    struct jpeg_compress_struct c;
    struct error_mgr err;
    // A buffer that no JPEG of this size can outgrow (6 bytes per pixel + headers), so libjpeg
    // never reallocates it: on any error there is exactly this one buffer to free.
    unsigned long capacity = (unsigned long) width * (unsigned long) height * 6 + 4096;
    unsigned char *volatile buf = malloc(capacity);
    unsigned long buf_len = capacity;
    if (!buf) {
        if (error && error_len) snprintf(error, error_len, "out of memory for a %dx%d JPEG", width, height);
        return -1;
    }
    c.err = jpeg_std_error(&err.base);
    err.base.error_exit = on_error;
    if (setjmp(err.jump)) {
        if (error && error_len) (*c.err->format_message)((j_common_ptr) &c, error);
        jpeg_destroy_compress(&c);
        free((void *) buf);
        return -1;
    }
    jpeg_create_compress(&c);
    unsigned char *dest = (unsigned char *) buf;
    jpeg_mem_dest(&c, &dest, &buf_len);
    c.image_width = (JDIMENSION) width;
    c.image_height = (JDIMENSION) height;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    if (!chroma_subsample) {
        for (int k = 0; k < 3; k++) { c.comp_info[k].h_samp_factor = 1; c.comp_info[k].v_samp_factor = 1; }
    }
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW) (pixels + (size_t) c.next_scanline * (size_t) row_stride);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    *out = dest;
    *len = buf_len;
    return 0;
}
