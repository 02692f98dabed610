/* Separable blur-and-subsample in one pass over the input: timm_aa's CPU kernel (see native.py).
 *
 * y[n, i, j, :] = sum_a sum_b rw[a][i] * cw[b][j] * x[n, ri[a][i], ci[b][j], :]
 *
 * The gather tables (rows ri/rw: rm x ho, columns ci/cw: cm x wo) hold an axis matrix row by row, padding,
 * taps and subsampling folded in; the backward pass passes the transposed matrices, so one kernel does both.
 * channels_last (x: n, h, w, c): per output row, the rm input rows are combined into a (w, c) buffer, then
 * the cm columns of that buffer into each output pixel, all along contiguous runs of channels.
 * NCHW (x: planes, h, w): TILE planes at a time are transposed into a (h, w, TILE) tile in cache, which
 * then goes the channels_last way, and the result is transposed back.
 * Sums run in the tensor's precision, over the taps in order; zero weights (table fill) are skipped, never
 * multiplied, so a NaN or Inf reaches exactly the outputs whose window holds it. Output rows (or tiles) are
 * shared between OpenMP threads: in a PyTorch process these are PyTorch's own (same libgomp), so nothing competes.
 *
 * The kernel is written once, for an element type T: this file includes itself once with T = float and once with
 * T = double; S(name) names each function for its type (combine_f32, timm_aa_blur_f64, ...).
 */
#ifndef T /* the first pass: what both types share, then the kernel for each type */
#include <stdint.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#ifndef TILE
#define TILE 16
#endif

#define MIN(a, b) ((a) < (b) ? (a) : (b))

typedef struct { /* sizes and gather tables of one call */
    int64_t h, w, c, ho, wo;
    const int32_t *ri, *ci;
    const void *rw, *cw;
    int64_t rm, cm;
} dims_t;


#ifdef __AVX512F__
/* 16 x 16 floats in registers: pairs of rows interleaved, then 4 x 4 blocks within 128-bit lanes, then lanes */
static inline void transpose16_f32(const float *src, int64_t ss, float *dst, int64_t ds) {
    __m512 r[16], t[16], u[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * ss);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int g = 0; g < 4; ++g) { /* rows 4g..4g+3: u[4g + k] holds, per lane L, column 4L + k of those rows */
        const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * g + 2]), e = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, e));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, e));
    }
    for (int k = 0; k < 4; ++k) { /* gather lane L of u[k], u[4 + k], u[8 + k], u[12 + k] into column 4L + k */
        const __m512 v0 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0x44), v1 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0xEE);
        const __m512 v2 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0x44);
        const __m512 v3 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0xEE);
        _mm512_storeu_ps(dst + (0 + k) * ds, _mm512_shuffle_f32x4(v0, v2, 0x88));
        _mm512_storeu_ps(dst + (4 + k) * ds, _mm512_shuffle_f32x4(v0, v2, 0xDD));
        _mm512_storeu_ps(dst + (8 + k) * ds, _mm512_shuffle_f32x4(v1, v3, 0x88));
        _mm512_storeu_ps(dst + (12 + k) * ds, _mm512_shuffle_f32x4(v1, v3, 0xDD));
    }
}
#endif

#define S(name) name##_f32
#define T float
#include "blur_kernel.c" /* this file, from its own folder */
#undef T
#undef S
#define S(name) name##_f64
#define T double
#include "blur_kernel.c" /* this file, from its own folder */
#undef T
#undef S

#else /* the kernel for element type T */

/* dst[j * ds + i] = src[i * ss + j] for i < rows, j < cols */
static void S(transpose_block)(const T *src, int64_t ss, T *dst, int64_t ds, int64_t rows, int64_t cols) {
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) dst[j * ds + i] = src[i * ss + j];
}

static void S(transpose)(const T *src, int64_t ss, T *dst, int64_t ds, int64_t rows, int64_t cols) {
#ifdef __AVX512F__
    if (sizeof(T) == sizeof(float)) { /* 16 x 16 blocks in registers, the edges element by element */
        for (int64_t i = 0; i < rows; i += 16)
            for (int64_t j = 0; j < cols; j += 16) {
                const int64_t bi = MIN(16, rows - i), bj = MIN(16, cols - j);
                if (bi == 16 && bj == 16)
                    transpose16_f32((const float *)(src + i * ss + j), ss, (float *)(dst + j * ds + i), ds);
                else
                    S(transpose_block)(src + i * ss + j, ss, dst + j * ds + i, ds, bi, bj);
            }
        return;
    }
#endif
    S(transpose_block)(src, ss, dst, ds, rows, cols);
}

/* out = sum_a f[a] * src[a][0:len], up to four sources per pass over out; the first pass overwrites it (a select,
   never a product: out may hold anything before) */
static inline void S(combine)(T *restrict out, const T *const *src, const T *f, int64_t m, int64_t len) {
    if (m == 0) /* no source (a row of the transposed matrix no output reads): exact zeros */
        for (int64_t e = 0; e < len; ++e) out[e] = 0;
    for (int64_t a = 0; a < m; a += 4) {
        const int64_t g = MIN(m - a, 4), keep = a > 0;
        const T *restrict s0 = src[a], *restrict s1 = src[a + (g > 1)], *restrict s2 = src[a + 2 * (g > 2)],
                *restrict s3 = src[a + 3 * (g > 3)];
        const T f0 = f[a], f1 = f[a + (g > 1)], f2 = f[a + 2 * (g > 2)], f3 = f[a + 3 * (g > 3)];
        if (g == 4)
            for (int64_t e = 0; e < len; ++e)
                out[e] = (keep ? out[e] : 0) + f0 * s0[e] + f1 * s1[e] + f2 * s2[e] + f3 * s3[e];
        else if (g == 3)
            for (int64_t e = 0; e < len; ++e) out[e] = (keep ? out[e] : 0) + f0 * s0[e] + f1 * s1[e] + f2 * s2[e];
        else if (g == 2)
            for (int64_t e = 0; e < len; ++e) out[e] = (keep ? out[e] : 0) + f0 * s0[e] + f1 * s1[e];
        else
            for (int64_t e = 0; e < len; ++e) out[e] = (keep ? out[e] : 0) + f0 * s0[e];
    }
}

/* y row (wo, c) from buf (w, c): out pixel j = sum_b cw[b][j] * buf[ci[b][j], :] */
static inline void S(columns)(const T *buf, T *yr, int64_t c, int64_t wo, const int32_t *ci, const T *cw,
                              int64_t cm, const T **src, T *f) {
    for (int64_t j = 0; j < wo; ++j) {
        int64_t m = 0;
        for (int64_t b = 0; b < cm; ++b) {
            if (cw[b * wo + j] == 0) continue; /* table fill: never multiplied (0 * Inf is NaN) */
            src[m] = buf + (int64_t)ci[b * wo + j] * c;
            f[m++] = cw[b * wo + j];
        }
        S(combine)(yr + j * c, src, f, m, c);
    }
}

static inline void S(columns_tile)(const T *buf, T *yr, int64_t wo, const int32_t *ci, const T *cw,
                                    int64_t cm) {
    for (int64_t j = 0; j < wo; ++j) {
        T acc[TILE] = {0};
        for (int64_t b = 0; b < cm; ++b) {
            const T g = cw[b * wo + j], *s = buf + (int64_t)ci[b * wo + j] * TILE;
            if (g == 0) continue;
            for (int k = 0; k < TILE; ++k) acc[k] += g * s[k];
        }
        for (int k = 0; k < TILE; ++k) yr[j * TILE + k] = acc[k];
    }
}

/* the rm input rows of output row i, each `len` values at `stride` apart from `base` */
static int64_t S(sources)(const T *base, int64_t stride, int64_t i, int64_t ho, const int32_t *ri,
                           const T *rw, int64_t rm, const T **src, T *f) {
    int64_t m = 0;
    for (int64_t a = 0; a < rm; ++a) {
        if (rw[a * ho + i] == 0) continue; /* table fill */
        src[m] = base + (int64_t)ri[a * ho + i] * stride;
        f[m++] = rw[a * ho + i];
    }
    return m;
}

/* channels_last: output row i of image xn (h, w, c) into yr (wo, c) */
static inline void S(row)(const T *xn, T *yr, int64_t i, int64_t c, const dims_t *d, T *buf,
                           const T **src, T *f) {
    const int64_t m = S(sources)(xn, d->w * c, i, d->ho, d->ri, (const T *)d->rw, d->rm, src, f);
    S(combine)(buf, src, f, m, d->w * c);
    if (c == TILE) /* one vector per pixel: accumulate in registers */
        S(columns_tile)(buf, yr, d->wo, d->ci, (const T *)d->cw, d->cm);
    else
        S(columns)(buf, yr, c, d->wo, d->ci, (const T *)d->cw, d->cm, src, f);
}

/* NCHW: `planes` (<= TILE) planes from xp into yp, through a (h, w, TILE) tile (one plane per lane)
   that goes the channels_last way into a (ho, wo, TILE) one, transposed back */
static void S(tile)(const T *xp, T *yp, int64_t planes, const dims_t *d, T *buf, T *tile, T *out,
                     const T **src, T *f) {
    const int64_t hw = d->h * d->w, howo = d->ho * d->wo;
    S(transpose)(xp, hw, tile, TILE, planes, hw);
    for (int64_t q = planes; q < TILE; ++q)
        for (int64_t e = 0; e < hw; ++e) tile[e * TILE + q] = 0;
    for (int64_t i = 0; i < d->ho; ++i) S(row)(tile, out + i * d->wo * TILE, i, TILE, d, buf, src, f);
    S(transpose)(out, TILE, yp, howo, howo, planes);
}

int S(timm_aa_blur)(const T *x, T *y, int64_t n, int64_t h, int64_t w, int64_t c, int64_t nchw, int64_t ho,
                    int64_t wo, const int32_t *ri, const T *rw, int64_t rm, const int32_t *ci, const T *cw,
                    int64_t cm, int threads) {
    const dims_t d = {h, w, c, ho, wo, ri, ci, rw, cw, rm, cm};
    const int64_t items = nchw ? (n * c + TILE - 1) / TILE : n * ho, m = rm > cm ? rm : cm;
    const int64_t depth = nchw ? TILE : c, scratch = w * depth + (nchw ? (h * w + ho * wo) * TILE : 0);
    int failed = 0;
    (void)threads;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        T *buf = malloc(sizeof(T) * (size_t)scratch), *f = malloc(sizeof(T) * (size_t)m);
        const T **src = malloc(sizeof(T *) * (size_t)m);
        const int ok = buf && src && f;
        failed = !ok;
#pragma omp for schedule(static)
        for (int64_t p = 0; p < items; ++p) {
            if (!ok) continue; /* every thread meets the loop; one that failed skips its share */
            if (nchw)
                S(tile)(x + p * TILE * h * w, y + p * TILE * ho * wo, MIN(TILE, n * c - p * TILE), &d, buf,
                        buf + w * TILE, buf + w * TILE + h * w * TILE, src, f);
            else
                S(row)(x + p / ho * h * w * c, y + p * wo * c, p % ho, c, &d, buf, src, f);
        }
        free(buf);
        free(src);
        free(f);
    }
    return failed;
}

#endif
