#include "tessera_vips.h"
#include <vips/vips.h>
#include <string.h>
#include <stdlib.h>

static void quiet_log(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data) {
    // libvips warns on stderr about each bad tile; the same failure reaches the user as an error
    // naming the file, so the warnings are noise.
    (void) domain; (void) level; (void) message; (void) data;
}

int tsr_init(void) {
    if (VIPS_INIT("tessera")) return -1;
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE, quiet_log, NULL);
    // Tiles are read once each: the operation cache would only hold memory.
    vips_cache_set_max(0);
    // ImageMagick would "open" damaged slides slowly and unpredictably; libvips' own loaders and
    // OpenSlide cover every format Tessera supports.
    vips_operation_block_set("VipsForeignLoadMagick", TRUE);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    return 0;
}

char *tsr_error_take(void) {
    const char *b = vips_error_buffer();
    char *copy = strdup(b ? b : "");
    vips_error_clear();
    return copy;
}

void tsr_free(void *p) { g_free(p); }
void tsr_unref(void *object) { if (object) g_object_unref(object); }
void tsr_thread_shutdown(void) { vips_thread_shutdown(); }
void tsr_set_concurrency(int n) { vips_concurrency_set(n); }
const char *tsr_version(void) { return vips_version_string(); }

const char *tsr_find_loader(const char *path) {
    const char *name = vips_foreign_find_load(path);
    if (!name) vips_error_clear();
    return name;
}

int tsr_open_default(const char *path, VipsImage **out) {
    *out = vips_image_new_from_file(path, "access", VIPS_ACCESS_RANDOM,
                                    "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    return *out ? 0 : -1;
}

int tsr_open_tiff_page(const char *path, int page, VipsImage **out) {
    return vips_tiffload(path, out, "page", page, "access", VIPS_ACCESS_RANDOM,
                         "fail_on", VIPS_FAIL_ON_ERROR, NULL);
}

int tsr_open_openslide_level(const char *path, int level, VipsImage **out) {
    return vips_openslideload(path, out, "level", level, "access", VIPS_ACCESS_RANDOM,
                              "fail_on", VIPS_FAIL_ON_ERROR, NULL);
}

int tsr_open_with(const char *loader, const char *path, VipsImage **out) {
    if (!strcmp(loader, "jpegload"))
        return vips_jpegload(path, out, "access", VIPS_ACCESS_RANDOM, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    if (!strcmp(loader, "pngload"))
        return vips_pngload(path, out, "access", VIPS_ACCESS_RANDOM, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    vips_error("tessera", "unknown loader %s", loader);
    return -1;
}


int tsr_width(VipsImage *im) { return vips_image_get_width(im); }
int tsr_height(VipsImage *im) { return vips_image_get_height(im); }
int tsr_bands(VipsImage *im) { return vips_image_get_bands(im); }
int tsr_format(VipsImage *im) { return (int) vips_image_get_format(im); }
int tsr_n_pages(VipsImage *im) { return vips_image_get_n_pages(im); }
double tsr_xres(VipsImage *im) { return vips_image_get_xres(im); }


char *tsr_get_string(VipsImage *im, const char *name) {
    if (!vips_image_get_typeof(im, name)) return NULL;
    char *s = NULL;
    if (vips_image_get_as_string(im, name, &s)) { vips_error_clear(); return NULL; }
    return s;
}

char **tsr_field_names(VipsImage *im) { return vips_image_get_fields(im); }
void tsr_free_strv(char **v) { g_strfreev(v); }

int tsr_to_rgb8(VipsImage *in, VipsImage **out, double scale16, double offset16) {
    VipsImage *base = vips_image_new();
    VipsImage **t = (VipsImage **) vips_object_local_array(VIPS_OBJECT(base), 8);
    VipsImage *cur = in;
    g_object_ref(cur);
    t[0] = cur;

    // Coded images (LABQ, RAD) decode to float/uchar first.
    if (vips_image_get_coding(cur) != VIPS_CODING_NONE) {
        if (vips_image_decode(cur, &t[1])) goto fail;
        cur = t[1];
    }
    VipsInterpretation interp = vips_image_guess_interpretation(cur);
    int bands = vips_image_get_bands(cur);
    gboolean has_alpha = vips_image_hasalpha(cur);
    int colour_bands = has_alpha ? bands - 1 : bands;

    // Anything that is not plain RGB/grey (CMYK, LAB, XYZ...) goes through libvips' colour machinery.
    if (interp == VIPS_INTERPRETATION_CMYK || interp == VIPS_INTERPRETATION_LAB ||
        interp == VIPS_INTERPRETATION_XYZ || interp == VIPS_INTERPRETATION_LCH ||
        interp == VIPS_INTERPRETATION_LABS || interp == VIPS_INTERPRETATION_scRGB ||
        interp == VIPS_INTERPRETATION_HSV || interp == VIPS_INTERPRETATION_YXY) {
        if (vips_colourspace(cur, &t[2], VIPS_INTERPRETATION_sRGB, NULL)) goto fail;
        cur = t[2];
        bands = vips_image_get_bands(cur);
        has_alpha = vips_image_hasalpha(cur);
        colour_bands = has_alpha ? bands - 1 : bands;
    }

    // Alpha is flattened onto white; for 16-bit the white is 65535.
    if (has_alpha) {
        VipsBandFormat f = vips_image_get_format(cur);
        double white = (f == VIPS_FORMAT_USHORT || f == VIPS_FORMAT_SHORT) ? 65535.0 : 255.0;
        VipsArrayDouble *bg = vips_array_double_newv(1, white);
        int r = vips_flatten(cur, &t[3], "background", bg, "max_alpha", white, NULL);
        vips_area_unref(VIPS_AREA(bg));
        if (r) goto fail;
        cur = t[3];
        colour_bands = vips_image_get_bands(cur);
    }
    if (colour_bands == 2) { // grey + something non-alpha: keep the first band
        if (vips_extract_band(cur, &t[4], 0, "n", 1, NULL)) goto fail;
        cur = t[4];
        colour_bands = 1;
    } else if (colour_bands > 3) {
        if (vips_extract_band(cur, &t[4], 0, "n", 3, NULL)) goto fail;
        cur = t[4];
        colour_bands = 3;
    }

    if (vips_image_get_format(cur) != VIPS_FORMAT_UCHAR) {
        VipsBandFormat f = vips_image_get_format(cur);
        double scale = 1.0, offset = 0.0;
        if (f == VIPS_FORMAT_USHORT || f == VIPS_FORMAT_SHORT || f == VIPS_FORMAT_UINT ||
            f == VIPS_FORMAT_INT || f == VIPS_FORMAT_FLOAT || f == VIPS_FORMAT_DOUBLE) {
            scale = scale16; offset = offset16;
        }
        if (vips_linear1(cur, &t[5], scale, offset, "uchar", TRUE, NULL)) goto fail;
        cur = t[5];
    }
    if (colour_bands == 1) {
        VipsImage *three[3] = { cur, cur, cur };
        if (vips_bandjoin(three, &t[6], 3, NULL)) goto fail;
        cur = t[6];
    }
    if (vips_copy(cur, out, "interpretation", VIPS_INTERPRETATION_sRGB, NULL)) goto fail;
    g_object_unref(base);
    return 0;
fail:
    g_object_unref(base);
    return -1;
}

int tsr_minmax(VipsImage *in, double *min, double *max) {
    if (vips_min(in, min, NULL)) return -1;
    if (vips_max(in, max, NULL)) return -1;
    return 0;
}


static VipsKernel kernel_named(const char *k) {
    if (!k) return VIPS_KERNEL_LANCZOS3;
    if (!strcmp(k, "nearest")) return VIPS_KERNEL_NEAREST;
    if (!strcmp(k, "linear")) return VIPS_KERNEL_LINEAR;
    if (!strcmp(k, "cubic")) return VIPS_KERNEL_CUBIC;
    if (!strcmp(k, "lanczos2")) return VIPS_KERNEL_LANCZOS2;
    return VIPS_KERNEL_LANCZOS3;
}

int tsr_resize(VipsImage *in, VipsImage **out, double scale, const char *kernel) {
    return vips_resize(in, out, scale, "kernel", kernel_named(kernel), NULL);
}


VipsRegion *tsr_region_new(VipsImage *im) { return vips_region_new(im); }

int tsr_region_read(VipsRegion *reg, int left, int top, int width, int height, uint8_t *dst) {
    VipsRect r = { left, top, width, height };
    if (vips_region_prepare(reg, &r)) return -1;
    size_t row = (size_t) width * VIPS_IMAGE_SIZEOF_PEL(reg->im);
    for (int y = 0; y < height; y++) {
        memcpy(dst + (size_t) y * row, VIPS_REGION_ADDR(reg, left, top + y), row);
    }
    return 0;
}

int tsr_write_to_memory(VipsImage *im, uint8_t **out, size_t *len) {
    *out = vips_image_write_to_memory(im, len);
    return *out ? 0 : -1;
}

static VipsImage *wrap(const uint8_t *pixels, int width, int height, int bands) {
    VipsImage *im = vips_image_new_from_memory(pixels, (size_t) width * height * bands,
                                               width, height, bands, VIPS_FORMAT_UCHAR);
    if (im) im->Type = bands >= 3 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W;
    return im;
}

int tsr_png_encode(const uint8_t *pixels, int width, int height, int bands, int compression,
                   void **out, size_t *len) {
    VipsImage *im = wrap(pixels, width, height, bands);
    if (!im) return -1;
    int r = vips_pngsave_buffer(im, out, len, "compression", compression, "strip", TRUE, NULL);
    g_object_unref(im);
    return r;
}

int tsr_png_save(const uint8_t *pixels, int width, int height, int bands, int compression, const char *path) {
    VipsImage *im = wrap(pixels, width, height, bands);
    if (!im) return -1;
    int r = vips_pngsave(im, path, "compression", compression, "strip", TRUE, NULL);
    g_object_unref(im);
    return r;
}

int tsr_decode(const void *buf, size_t len, uint8_t **pixels, int *width, int *height, int *bands) {
    VipsImage *im = vips_image_new_from_buffer(buf, len, "", "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    if (!im) return -1;
    VipsImage *u = NULL;
    if (vips_image_get_format(im) != VIPS_FORMAT_UCHAR) {
        if (vips_cast_uchar(im, &u, NULL)) { g_object_unref(im); return -1; }
    } else { u = im; g_object_ref(u); }
    size_t n = 0;
    *pixels = vips_image_write_to_memory(u, &n);
    *width = vips_image_get_width(u);
    *height = vips_image_get_height(u);
    *bands = vips_image_get_bands(u);
    g_object_unref(u);
    g_object_unref(im);
    return *pixels ? 0 : -1;
}
