#include "tessera_vips.h"
#include <tiffio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <stdio.h>

struct tsr_tiff {
    TIFF *tif;
    uint8_t *tables;    // JPEGTables without its trailing EOI
    uint32_t tables_len;
    int photometric;
};

static _Thread_local char last_error[512];

// Per-handle handlers (libtiff ≥ 4.5): the process-wide ones belong to libvips, whose TIFF
// errors must keep reaching its own error buffer.
static int record_error(TIFF *tif, void *user_data, const char *module, const char *fmt, va_list ap) {
    (void) tif; (void) user_data;
    int n = snprintf(last_error, sizeof last_error, "%s: ", module ? module : "libtiff");
    if (n < 0 || n >= (int) sizeof last_error) n = 0;
    vsnprintf(last_error + n, sizeof last_error - n, fmt, ap);
    return 1;
}

static int ignore_warning(TIFF *tif, void *user_data, const char *module, const char *fmt, va_list ap) {
    (void) tif; (void) user_data; (void) module; (void) fmt; (void) ap;
    return 1;
}

const char *tsr_tiff_last_error(void) { return last_error; }

tsr_tiff *tsr_tiff_open(const char *path, int page) {
    last_error[0] = 0;
    TIFFOpenOptions *options = TIFFOpenOptionsAlloc();
    if (!options) return NULL;
    TIFFOpenOptionsSetErrorHandlerExtR(options, record_error, NULL);
    TIFFOpenOptionsSetWarningHandlerExtR(options, ignore_warning, NULL);
    TIFF *tif = TIFFOpenExt(path, "rm", options);  // m: no memory-mapping, reads stay bounded
    TIFFOpenOptionsFree(options);
    if (!tif) return NULL;
    if (!TIFFSetDirectory(tif, (tdir_t) page)) { TIFFClose(tif); return NULL; }
    tsr_tiff *t = calloc(1, sizeof *t);
    if (!t) { TIFFClose(tif); return NULL; }
    t->tif = tif;
    uint16_t photometric = 0;
    TIFFGetFieldDefaulted(tif, TIFFTAG_PHOTOMETRIC, &photometric);
    t->photometric = photometric;
    uint32_t count = 0;
    void *tables = NULL;
    if (TIFFGetField(tif, TIFFTAG_JPEGTABLES, &count, &tables) && count >= 4 && tables) {
        t->tables = malloc(count);
        if (!t->tables) { TIFFClose(tif); free(t); return NULL; }
        memcpy(t->tables, tables, count);
        t->tables_len = count;
        // Drop the EOI that ends the tables-only stream.
        if (t->tables[count - 2] == 0xFF && t->tables[count - 1] == 0xD9) t->tables_len -= 2;
    }
    return t;
}

void tsr_tiff_close(tsr_tiff *t) {
    if (!t) return;
    TIFFClose(t->tif);
    free(t->tables);
    free(t);
}

void tsr_tiff_info(tsr_tiff *t, int *width, int *height, int *tile_width, int *tile_height,
                   int *compression, int *photometric, int *samples_per_pixel) {
    uint32_t w = 0, h = 0, tw = 0, th = 0;
    uint16_t comp = 0, spp = 0;
    TIFFGetField(t->tif, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(t->tif, TIFFTAG_IMAGELENGTH, &h);
    if (TIFFIsTiled(t->tif)) {
        TIFFGetField(t->tif, TIFFTAG_TILEWIDTH, &tw);
        TIFFGetField(t->tif, TIFFTAG_TILELENGTH, &th);
    }
    TIFFGetFieldDefaulted(t->tif, TIFFTAG_COMPRESSION, &comp);
    TIFFGetFieldDefaulted(t->tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    uint16_t planar = 0, bits = 0;
    TIFFGetFieldDefaulted(t->tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(t->tif, TIFFTAG_BITSPERSAMPLE, &bits);
    // Only interleaved 8-bit samples can pass through as a standalone JPEG: report others as unusable.
    if (planar != PLANARCONFIG_CONTIG || bits != 8) spp = 0;
    *width = (int) w; *height = (int) h; *tile_width = (int) tw; *tile_height = (int) th;
    *compression = comp; *photometric = t->photometric; *samples_per_pixel = spp;
}

// APP14 "Adobe" segment with transform 0: the components are RGB, not YCbCr.
static const uint8_t adobe_rgb[] = {
    0xFF, 0xEE, 0x00, 0x0E, 'A', 'd', 'o', 'b', 'e', 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00
};

int tsr_tiff_jpeg_tile(tsr_tiff *t, int tx, int ty, uint8_t **out, size_t *len) {
    uint32_t tw = 0, th = 0;
    TIFFGetField(t->tif, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(t->tif, TIFFTAG_TILELENGTH, &th);
    if (tw == 0 || th == 0 || tx < 0 || ty < 0 || !TIFFCheckTile(t->tif, (uint32_t) tx * tw, (uint32_t) ty * th, 0, 0)) {
        snprintf(last_error, sizeof last_error, "tile %d,%d is outside the page", tx, ty);
        return -1;
    }
    ttile_t index = TIFFComputeTile(t->tif, (uint32_t) tx * tw, (uint32_t) ty * th, 0, 0);
    if (index >= TIFFNumberOfTiles(t->tif)) {
        snprintf(last_error, sizeof last_error, "tile %d,%d is outside the page", tx, ty);
        return -1;
    }
    uint64_t *sizes = NULL;
    if (!TIFFGetField(t->tif, TIFFTAG_TILEBYTECOUNTS, &sizes) || !sizes) {
        snprintf(last_error, sizeof last_error, "no tile byte counts");
        return -1;
    }
    uint64_t raw_size = sizes[index];
    if (raw_size < 4 || raw_size > (64u << 20)) {
        snprintf(last_error, sizeof last_error, "tile %d,%d has implausible size %llu", tx, ty, (unsigned long long) raw_size);
        return -1;
    }
    uint8_t *raw = malloc(raw_size);
    if (!raw) { snprintf(last_error, sizeof last_error, "out of memory"); return -1; }
    tmsize_t got = TIFFReadRawTile(t->tif, index, raw, (tmsize_t) raw_size);
    if (got < 4 || raw[0] != 0xFF || raw[1] != 0xD8) {
        free(raw);
        if (!last_error[0]) snprintf(last_error, sizeof last_error, "tile %d,%d is not a JPEG stream", tx, ty);
        return -1;
    }
    int rgb = t->photometric == PHOTOMETRIC_RGB;
    size_t head = t->tables_len ? t->tables_len : 2;  // tables start with their own SOI
    size_t total = head + (rgb ? sizeof adobe_rgb : 0) + (size_t) got - 2;
    uint8_t *buf = malloc(total);
    if (!buf) { free(raw); snprintf(last_error, sizeof last_error, "out of memory"); return -1; }
    size_t o = 0;
    if (t->tables_len) { memcpy(buf, t->tables, t->tables_len); o = t->tables_len; }
    else { buf[0] = 0xFF; buf[1] = 0xD8; o = 2; }
    if (rgb) {
        // The Adobe marker must directly follow SOI; tables start with SOI too.
        memmove(buf + 2 + sizeof adobe_rgb, buf + 2, o - 2);
        memcpy(buf + 2, adobe_rgb, sizeof adobe_rgb);
        o += sizeof adobe_rgb;
    }
    memcpy(buf + o, raw + 2, (size_t) got - 2);
    o += (size_t) got - 2;
    free(raw);
    *out = buf;
    *len = o;
    return 0;
}
