// Thin, non-variadic wrappers over the libvips calls Tessera needs.
// Swift cannot call C variadic functions, and libvips macros do not import.
// Every function returns 0 on success and -1 on failure (message via tsr_error_take).
#ifndef TESSERA_VIPS_H
#define TESSERA_VIPS_H
#include <stddef.h>
#include <stdint.h>

typedef struct _VipsImage VipsImage;
typedef struct _VipsRegion VipsRegion;

int tsr_init(void);
/// Copies and clears libvips' error buffer. Caller frees with tsr_free.
char *tsr_error_take(void);
void tsr_free(void *p);
void tsr_unref(void *object);
void tsr_thread_shutdown(void);
void tsr_set_concurrency(int n);
const char *tsr_version(void);

/// Name of the loader libvips would pick ("tiffload", "openslideload", ...), or NULL.
const char *tsr_find_loader(const char *path);
int tsr_open_default(const char *path, VipsImage **out);
int tsr_open_tiff_page(const char *path, int page, VipsImage **out);
int tsr_open_openslide_level(const char *path, int level, VipsImage **out);
/// Opens with a named loader ("jpegload", "pngload"), skipping format detection.
int tsr_open_with(const char *loader, const char *path, VipsImage **out);

int tsr_width(VipsImage *im);
int tsr_height(VipsImage *im);
int tsr_bands(VipsImage *im);
int tsr_format(VipsImage *im);          // VipsBandFormat
int tsr_n_pages(VipsImage *im);
/// Field as a string (caller frees with tsr_free), or NULL when absent.
char *tsr_get_string(VipsImage *im, const char *name);
double tsr_xres(VipsImage *im);
/// All metadata field names, NULL-terminated; free with tsr_free_strv.
char **tsr_field_names(VipsImage *im);
void tsr_free_strv(char **v);

/// Converts any image to 3-band uchar sRGB (documented in SlideImage.swift):
/// 16-bit → 8-bit by `scale16` * v + `offset16`, grayscale replicated, alpha flattened onto white.
int tsr_to_rgb8(VipsImage *in, VipsImage **out, double scale16, double offset16);
/// Min and max of band values (whole image; used on thumbnails only).
int tsr_minmax(VipsImage *in, double *min, double *max);
/// Resample by `scale` with the named kernel ("lanczos3", "linear", "nearest", "cubic").
int tsr_resize(VipsImage *in, VipsImage **out, double scale, const char *kernel);

VipsRegion *tsr_region_new(VipsImage *im);
/// Fetches a rectangle and copies it, row by row, into dst (w*h*bands bytes, tightly packed).
int tsr_region_read(VipsRegion *reg, int left, int top, int width, int height, uint8_t *dst);
/// Renders a whole (small) image into a new malloc'd buffer of w*h*bands bytes.
int tsr_write_to_memory(VipsImage *im, uint8_t **out, size_t *len);

/// PNG encoders over a tightly packed uchar buffer (bands 1, 3 or 4).
int tsr_png_encode(const uint8_t *pixels, int width, int height, int bands, int compression,
                   void **out, size_t *len);
int tsr_png_save(const uint8_t *pixels, int width, int height, int bands, int compression, const char *path);
/// Decodes an encoded image buffer to a packed uchar buffer.
int tsr_decode(const void *buf, size_t len, uint8_t **pixels, int *width, int *height, int *bands);

#endif

// ---- Raw JPEG tiles of a TIFF page through libtiff (no decode) ----
typedef struct tsr_tiff tsr_tiff;
/// Opens one page (directory) of a TIFF; NULL on failure (message via tsr_tiff_last_error).
tsr_tiff *tsr_tiff_open(const char *path, int page);
void tsr_tiff_close(tsr_tiff *t);
/// Layout of the page: tile size (0 when stripped), compression and photometric TIFF codes.
void tsr_tiff_info(tsr_tiff *t, int *width, int *height, int *tile_width, int *tile_height,
                   int *compression, int *photometric, int *samples_per_pixel);
/// The compressed tile at tile column tx, row ty as a standalone JPEG (JPEGTables spliced in,
/// an Adobe marker added for RGB-photometric pages so decoders do not assume YCbCr).
/// Caller frees *out with free().
int tsr_tiff_jpeg_tile(tsr_tiff *t, int tx, int ty, uint8_t **out, size_t *len);
const char *tsr_tiff_last_error(void);

// ---- Direct libjpeg-turbo encode ----
/// Encodes an 8-bit RGB rectangle (rows `row_stride` bytes apart) as a baseline JPEG.
/// libvips' own jpegsave costs ≈2.5× more per 256² tile (per-image pipeline set-up), so the
/// per-tile hot path calls the same libjpeg-turbo that libvips links. Caller frees *out with free().
int tsr_jpeg_encode_rgb(const uint8_t *pixels, int width, int height, int row_stride, int quality,
                        int chroma_subsample, uint8_t **out, size_t *len, char *error, size_t error_len);

/// Decodes a baseline/progressive JPEG to packed 8-bit RGB with libjpeg-turbo (default IDCT, as
/// libvips and Pillow use, so pixels match theirs). Caller frees *out with free().
int tsr_jpeg_decode_rgb(const uint8_t *data, size_t len, uint8_t **out, int *width, int *height,
                        char *error, size_t error_len);

/// A reusable JPEG decoder (one per thread; not thread-safe): same output as tsr_jpeg_decode_rgb,
/// without setting libjpeg up and tearing it down per image, and into a caller's buffer.
typedef struct tsr_jpeg_decoder tsr_jpeg_decoder;
tsr_jpeg_decoder *tsr_jpeg_decoder_new(void);
void tsr_jpeg_decoder_free(tsr_jpeg_decoder *dec);
/// Reads the header of `data` (which must stay valid until tsr_jpeg_decoder_read returns) and gives
/// the size of the RGB output. Refuses more than 256 MP. 0 on success, -1 with a message.
int tsr_jpeg_decoder_header(tsr_jpeg_decoder *dec, const uint8_t *data, size_t len, int *width, int *height,
                            char *error, size_t error_len);
/// Decodes the image whose header was just read into `out` (packed RGB, width×3 bytes per row;
/// `capacity` bytes available). 0 on success, -1 with a message; the decoder is reusable either way.
int tsr_jpeg_decoder_read(tsr_jpeg_decoder *dec, uint8_t *out, size_t capacity, char *error, size_t error_len);
