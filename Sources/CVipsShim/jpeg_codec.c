// Per-tile JPEG encode and decode with libjpeg-turbo (see tessera_vips.h for why not libvips).
#include "tessera_vips.h"
#include <stdio.h>
#include <jpeglib.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

// libjpeg reports errors by calling error_exit, which must not return: jump back to the caller.
struct jump_error {
    struct jpeg_error_mgr base;
    jmp_buf jump;
};

static void jump_on_error(j_common_ptr cinfo) {
    longjmp(((struct jump_error *) cinfo->err)->jump, 1);
}

// Corrupt data is an error, not a warning: never return silently wrong pixels.
static void jump_on_corrupt_data(j_common_ptr cinfo, int level) {
    if (level < 0) longjmp(((struct jump_error *) cinfo->err)->jump, 1);
}

int tsr_jpeg_encode_rgb(const uint8_t *pixels, int width, int height, int row_stride, int quality,
                        int chroma_subsample, uint8_t **out, size_t *len, char *error, size_t error_len) {
    struct jpeg_compress_struct c;
    struct jump_error err;
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
    err.base.error_exit = jump_on_error;
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

int tsr_jpeg_decode_rgb(const uint8_t *data, size_t len, uint8_t **out, int *width, int *height,
                        char *error, size_t error_len) {
    struct jpeg_decompress_struct d;
    struct jump_error err;
    uint8_t *volatile pixels = NULL;
    d.err = jpeg_std_error(&err.base);
    err.base.error_exit = jump_on_error;
    err.base.emit_message = jump_on_corrupt_data;
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

// A reusable decoder: one jpeg_decompress_struct per thread, kept across tiles. Creating and
// destroying it per 256² tile costs allocator work and table set-up on every image; jpeg_abort
// returns it to the "no image" state, after success and after an error alike.
struct tsr_jpeg_decoder {
    struct jpeg_decompress_struct d;
    struct jump_error err;
    int active;  // a header has been read and the image not yet finished or aborted
};

tsr_jpeg_decoder *tsr_jpeg_decoder_new(void) {
    tsr_jpeg_decoder *dec = calloc(1, sizeof *dec);
    if (!dec) return NULL;
    dec->d.err = jpeg_std_error(&dec->err.base);
    dec->err.base.error_exit = jump_on_error;
    dec->err.base.emit_message = jump_on_corrupt_data;
    if (setjmp(dec->err.jump)) {  // jpeg_create_decompress fails only when out of memory
        jpeg_destroy_decompress(&dec->d);
        free(dec);
        return NULL;
    }
    jpeg_create_decompress(&dec->d);
    return dec;
}

void tsr_jpeg_decoder_free(tsr_jpeg_decoder *dec) {
    if (!dec) return;
    jpeg_destroy_decompress(&dec->d);
    free(dec);
}

static int decoder_fail(tsr_jpeg_decoder *dec, char *error, size_t error_len) {
    if (error && error_len) (*dec->d.err->format_message)((j_common_ptr) &dec->d, error);
    jpeg_abort_decompress(&dec->d);
    dec->active = 0;
    return -1;
}

int tsr_jpeg_decoder_header(tsr_jpeg_decoder *dec, const uint8_t *data, size_t len, int *width, int *height,
                            char *error, size_t error_len) {
    struct jpeg_decompress_struct *d = &dec->d;
    if (dec->active) { jpeg_abort_decompress(d); dec->active = 0; }
    if (setjmp(dec->err.jump)) return decoder_fail(dec, error, error_len);
    jpeg_mem_src(d, data, (unsigned long) len);
    jpeg_read_header(d, TRUE);
    d->out_color_space = JCS_RGB;
    // A hostile header can declare 65500² pixels: refuse more than 256 MP before allocating.
    if ((uint64_t) d->image_width * d->image_height > (256u << 20)) {
        if (error && error_len) snprintf(error, error_len, "JPEG declares %ux%u pixels, above the 256 MP limit", d->image_width, d->image_height);
        jpeg_abort_decompress(d);
        return -1;
    }
    dec->active = 1;
    *width = (int) d->image_width;  // output size: no scaling is requested
    *height = (int) d->image_height;
    return 0;
}

int tsr_jpeg_decoder_read(tsr_jpeg_decoder *dec, uint8_t *out, size_t capacity, char *error, size_t error_len) {
    struct jpeg_decompress_struct *d = &dec->d;
    if (!dec->active) {
        if (error && error_len) snprintf(error, error_len, "no JPEG header read");
        return -1;
    }
    if (setjmp(dec->err.jump)) return decoder_fail(dec, error, error_len);
    jpeg_start_decompress(d);
    size_t stride = (size_t) d->output_width * 3;
    if (d->output_components != 3 || stride * d->output_height > capacity) {
        if (error && error_len) snprintf(error, error_len, "JPEG output of %ux%u×%d does not fit the buffer", d->output_width, d->output_height, d->output_components);
        jpeg_abort_decompress(d);
        dec->active = 0;
        return -1;
    }
    // Several rows per call: libjpeg converts a whole row group at once instead of one row at a time.
    enum { ROWS = 32 };
    JSAMPROW rows[ROWS];
    while (d->output_scanline < d->output_height) {
        JDIMENSION first = d->output_scanline, n = d->output_height - first;
        if (n > ROWS) n = ROWS;
        for (JDIMENSION r = 0; r < n; r++) rows[r] = out + (size_t) (first + r) * stride;
        if (jpeg_read_scanlines(d, rows, n) == 0) {  // cannot happen with an in-memory source; never loop forever
            if (error && error_len) snprintf(error, error_len, "JPEG decoder made no progress at row %u", first);
            jpeg_abort_decompress(d);
            dec->active = 0;
            return -1;
        }
    }
    jpeg_finish_decompress(d);
    dec->active = 0;
    return 0;
}
