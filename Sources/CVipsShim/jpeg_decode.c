#include "tessera_vips.h"
#include <stdio.h>
#include <jpeglib.h>
#include <setjmp.h>
#include <stdlib.h>

struct decode_error {
    struct jpeg_error_mgr base;
    jmp_buf jump;
};

static void decode_error_exit(j_common_ptr cinfo) {
    longjmp(((struct decode_error *) cinfo->err)->jump, 1);
}

// Corrupt data is an error, not a warning: never return silently wrong pixels.
static void decode_warning(j_common_ptr cinfo, int level) {
    if (level < 0) longjmp(((struct decode_error *) cinfo->err)->jump, 1);
}

int tsr_jpeg_decode_rgb(const uint8_t *data, size_t len, uint8_t **out, int *width, int *height,
                        char *error, size_t error_len) {
    struct jpeg_decompress_struct d;
    struct decode_error err;
    uint8_t *volatile pixels = NULL;
    d.err = jpeg_std_error(&err.base);
    err.base.error_exit = decode_error_exit;
    err.base.emit_message = decode_warning;
    if (setjmp(err.jump)) {
        if (error && error_len) (*d.err->format_message)((j_common_ptr) &d, error);
        jpeg_destroy_decompress(&d);
        free((void *) pixels);
        return -1;
    }
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, data, (unsigned long) len);
    jpeg_read_header(&d, TRUE);
    d.out_color_space = JCS_RGB;
    // A hostile header can declare 65500² pixels: refuse more than 256 MP before allocating.
    if ((uint64_t) d.image_width * d.image_height > (256u << 20)) {
        if (error && error_len) snprintf(error, error_len, "JPEG declares %ux%u pixels, above the 256 MP limit", d.image_width, d.image_height);
        jpeg_destroy_decompress(&d);
        return -1;
    }
    jpeg_start_decompress(&d);
    size_t stride = (size_t) d.output_width * 3;
    pixels = malloc(stride * d.output_height);
    if (!pixels) {
        if (error && error_len) snprintf(error, error_len, "out of memory for a %ux%u JPEG", d.output_width, d.output_height);
        jpeg_destroy_decompress(&d);
        return -1;
    }
    while (d.output_scanline < d.output_height) {
        JSAMPROW row = pixels + (size_t) d.output_scanline * stride;
        jpeg_read_scanlines(&d, &row, 1);
    }
    *width = (int) d.output_width;
    *height = (int) d.output_height;
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    *out = (uint8_t *) pixels;
    return 0;
}
