/* One stretch of mini-batch Adam/AdamW on softmax regression (10 classes), in float32.
 *
 * The same maths as the Python loop in train.py's ``fit`` (which documents each phase):
 * logits = scale * W x + b, closed-form gradient (softmax - onehot) / batch, then torch's
 * fused Adam update. Why C: at batch 128 a step is ~2 MFLOP, and the general GEMM routines
 * lose most of their time on these skinny shapes (10 x 784 x 128) plus ~10 op dispatches per
 * step; here the images are read straight from the uint8 dataset by index, converted to
 * float in registers, and every loop is blocked so that its accumulators stay in registers.
 *
 * Written with GCC/Clang vector extensions: -march=native turns them into AVX-512 here,
 * AVX2 or NEON elsewhere. Built and loaded at run time by _native.py (falls back to
 * TorchScript when no C compiler is present). Tests compare it with autograd + torch.optim.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define K 10     /* classes */
#define L 16     /* floats per vector */

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef uint8_t u8x16 __attribute__((vector_size(16)));

#define INLINE static inline __attribute__((always_inline))

INLINE v16 load_f32(const float *p) { v16 v; memcpy(&v, p, sizeof v); return v; }
#ifdef __AVX512F__
#include <immintrin.h>
INLINE v16 load_u8(const uint8_t *p) {  /* vpmovzxbd + vcvtdq2ps */
    return (v16)_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)));
}
#else
INLINE v16 load_u8(const uint8_t *p) {
    /* two steps (bytes to int32, int32 to float): GCC 12 scalarises the direct conversion */
    u8x16 u;
    memcpy(&u, p, sizeof u);
    return __builtin_convertvector(__builtin_convertvector(u, v16i), v16);
}
#endif
INLINE void store_f32(float *p, v16 v) { memcpy(p, &v, sizeof v); }
INLINE v16 splat(float f) { return (v16){0} + f; }

/* 16 features of an image at column j, as floats, from either storage */
INLINE v16 load_x(const void *row, int64_t j, int u8) {
    return u8 ? load_u8((const uint8_t *)row + j) : load_f32((const float *)row + j);
}
INLINE float x_at(const void *row, int64_t j, int u8) {
    return u8 ? (float)((const uint8_t *)row)[j] : ((const float *)row)[j];
}

#ifdef __AVX512F__
INLINE float hsum(v16 v) { return _mm512_reduce_add_ps((__m512)v); }
#else
INLINE float hsum(v16 v) {
    /* pairwise tree: 4 levels of shuffles + adds instead of 15 dependent adds */
    float s[L];
    memcpy(s, &v, sizeof s);
    for (int w = L / 2; w >= 1; w /= 2)
        for (int i = 0; i < w; i++) s[i] += s[i + w];
    return s[0];
}
#endif

/* exp for x <= 0 (arguments here are logit - max): 2^n * p(r), |r| <= ln2/2, degree-6
 * polynomial; relative error ~2e-7, like the vectorised expf that torch uses. */
INLINE v16 vexp(v16 x) {
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    {   /* clamp at -87: exp(-87) ~ 1.6e-38 is still a normal float */
        v16i keep = x >= splat(-87.0f), xi, lo;
        const v16 floor87 = splat(-87.0f);
        memcpy(&xi, &x, sizeof xi);
        memcpy(&lo, &floor87, sizeof lo);
        xi = (xi & keep) | (lo & ~keep);
        memcpy(&x, &xi, sizeof x);
    }
    v16 t = x * log2e + 12582912.0f;           /* 1.5 * 2^23: round to nearest integer */
    v16 n = t - 12582912.0f;
    v16 r = x - n * ln2_hi - n * ln2_lo;
    v16 p = splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    v16i e = (__builtin_convertvector(n, v16i) + 127) << 23;
    v16 two_n;
    memcpy(&two_n, &e, sizeof two_n);
    return p * two_n;
}

/* z[i*K + k] = scale * <W_k, x_i> + b_k for the bs images rows[0..bs); the images also land,
 * as floats, in xs (bs x d), where the backward pass reads them (converted once, from L2) */
INLINE void prefetch_row(const void *row, size_t row_bytes) {
    for (size_t o = 0; o < row_bytes; o += 64) __builtin_prefetch((const char *)row + o, 0, 2);
}

/* logits of 4 images for 5 classes (W5 = W + k0 * d): 20 accumulators in registers, each W
 * vector loaded feeds 4 FMAs. With ``store`` the images are also written to s[0..4) as floats. */
INLINE void block4x5(const void *const *r, int64_t d, int u8, int store, float *const *s,
                     const float *W5, float out[4][5]) {
    const int64_t dv = d - d % L;
    v16 a[4][5];
    for (int q = 0; q < 4; q++)
        for (int k = 0; k < 5; k++) a[q][k] = splat(0.0f);
    for (int64_t j = 0; j < dv; j += L) {
        v16 f[4];
        for (int q = 0; q < 4; q++) {
            f[q] = load_x(r[q], j, u8);
            if (store) store_f32(s[q] + j, f[q]);
        }
#pragma GCC unroll 5
        for (int k = 0; k < 5; k++) {
            const v16 w = load_f32(W5 + k * d + j);
            for (int q = 0; q < 4; q++) a[q][k] += w * f[q];
        }
    }
    for (int q = 0; q < 4; q++) {
        if (store)
            for (int64_t j = dv; j < d; j++) s[q][j] = x_at(r[q], j, u8);
        for (int k = 0; k < 5; k++) {
            float t = hsum(a[q][k]);
            for (int64_t j = dv; j < d; j++) t += W5[k * d + j] * s[q][j];
            out[q][k] = t;
        }
    }
}

/* z[i*K + k] = scale * <W_k, x_i> + b_k for the bs images rows[0..bs); the images also land,
 * as floats, in xs (bs x d), where the backward pass reads them (converted once, from L2).
 * Meanwhile the rows of the next batch (next[0..next_bs)) are prefetched. */
INLINE void forward(const void *const *rows, int64_t bs, int64_t d, int u8, float scale,
                    const float *W, const float *b, float *z, float *xs,
                    const void *const *next, int64_t next_bs) {
    int64_t i = 0;
    const size_t row_bytes = (size_t)d * (u8 ? 1 : sizeof(float));
    for (; i + 3 < bs; i += 4) {
        /* the next batch's images start their trip from memory (random rows: no hardware
         * prefetcher guesses them), spread over this batch so that few are in flight at once */
        for (int64_t q = i; q < i + 4 && q < next_bs; q++) prefetch_row(next[q], row_bytes);
        float *s[4] = {xs + i * d, xs + (i + 1) * d, xs + (i + 2) * d, xs + (i + 3) * d};
        const void *fr[4] = {s[0], s[1], s[2], s[3]};
        float out[4][5];
        /* classes 0-4 from the images (converted and stored), classes 5-9 from the stored floats */
        block4x5(rows + i, d, u8, 1, s, W, out);
        for (int q = 0; q < 4; q++)
            for (int k = 0; k < 5; k++) z[(i + q) * K + k] = scale * out[q][k] + b[k];
        block4x5(fr, d, 0, 0, s, W + 5 * d, out);
        for (int q = 0; q < 4; q++)
            for (int k = 0; k < 5; k++) z[(i + q) * K + 5 + k] = scale * out[q][k] + b[5 + k];
    }
    for (int64_t q = i; q < next_bs; q++) prefetch_row(next[q], row_bytes);
    for (; i < bs; i++) {  /* the last 0-3 images, one by one */
        float *si = xs + i * d;
        for (int64_t j = 0; j < d; j++) si[j] = x_at(rows[i], j, u8);
        for (int k = 0; k < K; k++) {
            float t = 0.0f;
            for (int64_t j = 0; j < d; j++) t += W[k * d + j] * si[j];
            z[i * K + k] = scale * t + b[k];
        }
    }
}

/* In place: z (bs x K logits) becomes g = softmax(z) - onehot(y); logp[i] = log p(y_i).
 * Robust losses weight an image's row: generalised cross-entropy (1 - p^q) / q has the gradient
 * p(y_i)^q (softmax - onehot), q = 0 being the cross-entropy; a loss cap makes the loss flat,
 * the row 0, where -logp[i] > cap (cap = INFINITY: no cap). */
INLINE void softmax_grad(float *z, const int64_t *y, int64_t bs, float *logp, float cap, float q,
                         const float *sw) {
    for (int64_t i = 0; i < bs; i++) {
        float m = z[i * K];
        for (int k = 1; k < K; k++) m = z[i * K + k] > m ? z[i * K + k] : m;
        for (int k = 0; k < K; k++) z[i * K + k] -= m;
        logp[i] = z[i * K + y[i]];  /* the true class's logit - max, before exp */
    }
    const int64_t n = bs * K, nv = n - n % L;
    for (int64_t j = 0; j < nv; j += L) store_f32(z + j, vexp(load_f32(z + j)));
    for (int64_t j = nv; j < n; j++) z[j] = vexp(splat(z[j]))[0];
    for (int64_t i = 0; i < bs; i++) {
        float s = 0.0f;
        for (int k = 0; k < K; k++) s += z[i * K + k];
        const float inv = 1.0f / s;
        logp[i] -= logf(s);  /* log p(true) = (z_t - m) - log(sum exp(z - m)) */
        if (-logp[i] > cap) {
            for (int k = 0; k < K; k++) z[i * K + k] = 0.0f;
            continue;
        }
        for (int k = 0; k < K; k++) z[i * K + k] *= inv;
        z[i * K + y[i]] -= 1.0f;
        if (q != 0.0f) {
            const float w = expf(q * logp[i]);
            for (int k = 0; k < K; k++) z[i * K + k] *= w;
        }
        if (sw)  /* the sample's weight (over the mean weight), one more factor */
            for (int k = 0; k < K; k++) z[i * K + k] *= sw[i];
    }
}

/* gW = alpha * g^T X (K x d), gb = beta * column sums of g; X is xs, bs x d floats */
INLINE void backward(const float *xs, int64_t bs, int64_t d, const float *g,
                     float alpha, float beta, float *gW, float *gb) {
    int64_t j = 0;
    for (; j + 4 * L <= d; j += 4 * L) {
        /* 64 columns x 5 classes of gW live in registers (each image vector feeds 5 FMAs);
         * the second half of the classes re-reads the same 64 columns, now in L1 */
        for (int k0 = 0; k0 < K; k0 += 5) {
            v16 a[5][4];
            for (int k = 0; k < 5; k++)
                for (int c = 0; c < 4; c++) a[k][c] = splat(0.0f);
            for (int64_t i = 0; i < bs; i++) {
                v16 f[4];
                for (int c = 0; c < 4; c++) f[c] = load_f32(xs + i * d + j + c * L);
#pragma GCC unroll 5
                for (int k = 0; k < 5; k++) {
                    const v16 gk = splat(g[i * K + k0 + k]);
                    for (int c = 0; c < 4; c++) a[k][c] += gk * f[c];
                }
            }
            for (int k = 0; k < 5; k++)
                for (int c = 0; c < 4; c++) store_f32(gW + (k0 + k) * d + j + c * L, a[k][c] * alpha);
        }
    }
    for (; j + L <= d; j += L) {
        v16 a[K];
        for (int k = 0; k < K; k++) a[k] = splat(0.0f);
        for (int64_t i = 0; i < bs; i++) {
            v16 f = load_f32(xs + i * d + j);
            for (int k = 0; k < K; k++) a[k] += splat(g[i * K + k]) * f;
        }
        for (int k = 0; k < K; k++) store_f32(gW + k * d + j, a[k] * alpha);
    }
    for (; j < d; j++) {
        for (int k = 0; k < K; k++) {
            float s = 0.0f;
            for (int64_t i = 0; i < bs; i++) s += g[i * K + k] * xs[i * d + j];
            gW[k * d + j] = s * alpha;
        }
    }
    for (int k = 0; k < K; k++) {
        float s = 0.0f;
        for (int64_t i = 0; i < bs; i++) s += g[i * K + k];
        gb[k] = s * beta;
    }
}

/* one step's forward and backward; d is a constant where the caller passes one, so that
 * the compiler addresses W's rows with immediate offsets instead of spilling 10 pointers */
INLINE void grad_step(const void *const *rows, int64_t bs, int64_t d, int u8, float scale,
                      const float *W, const float *b, const int64_t *y, float *z, float *xs,
                      float *logp, float *gW, float *gb, const void *const *next, int64_t next_bs,
                      float cap, float q, const float *sw) {
    forward(rows, bs, d, u8, scale, W, b, z, xs, next, next_bs);
    softmax_grad(z, y, bs, logp, cap, q, sw);
    backward(xs, bs, d, z, scale / (float)bs, 1.0f / (float)bs, gW, gb);
}

/* torch's fused Adam/AdamW update (aten/src/ATen/native/cpu/FusedAdamKernel.cpp), one tensor */
static void adam(float *p, const float *grad, float *m, float *v, int64_t n, float step, float lr,
                 float b1, float b2, float eps, float wd, int decoupled) {
    const double bc1 = 1.0 - pow(b1, step), bc2 = 1.0 - pow(b2, step);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float c1 = 1.0f - b1, c2 = 1.0f - b2, decay = lr * wd;
    for (int64_t j = 0; j < n; j++) {
        float g = grad[j], w = p[j];
        if (wd != 0.0f) {
            if (decoupled) w -= w * decay;
            else g += w * wd;
        }
        const float mj = m[j] + c1 * (g - m[j]);
        const float vj = b2 * v[j] + c2 * g * g;
        m[j] = mj;
        v[j] = vj;
        p[j] = w - step_size * mj / (sqrtf(vj) / bc2_sqrt + eps);
    }
}

/* Images perm[start:stop) of one epoch, in batches of ``batch`` (the last may be short).
 * y holds the labels in epoch order (y[i] is the label of image perm[i]); logp[i] receives
 * log p(y[i]) under the weights before the step that used it; sw (NULL: none) holds the
 * sample weights in epoch order, normalised to mean 1, each scaling its image's gradient. Scratch: z (batch x K),
 * rows (2 x batch pointers), xs (batch x d floats). Returns 0. */
int mlr_adam_chunk(const void *X, int x_u8, int64_t d, const int64_t *perm, const int64_t *y,
                   int64_t start, int64_t stop, int64_t batch, float scale,
                   float *W, float *b, float *gW, float *gb, float *z, const void **rows, float *xs,
                   float *logp, float *mW, float *vW, float *mb, float *vb, float *stepW, float *stepb,
                   float lr, float b1, float b2, float eps, float wd, int decoupled, float cap, float q,
                   const float *sw) {
    const size_t row_bytes = (size_t)d * (x_u8 ? 1 : sizeof(float));
    const void **cur = rows, **next = rows + batch;
    for (int64_t r = 0; r < batch && start + r < stop; r++)
        cur[r] = (const char *)X + (size_t)perm[start + r] * row_bytes;
    for (int64_t i = start; i < stop; i += batch) {
        const int64_t bs = stop - i < batch ? stop - i : batch;
        const int64_t nbs = stop - (i + bs) < batch ? stop - (i + bs) : batch;
        for (int64_t r = 0; r < nbs; r++)
            next[r] = (const char *)X + (size_t)perm[i + bs + r] * row_bytes;
        /* forward, then the closed-form gradient of the mean loss */
        const float *swi = sw ? sw + i : NULL;
        if (x_u8 && d == 784)
            grad_step(cur, bs, 784, 1, scale, W, b, y + i, z, xs, logp + i, gW, gb, next, nbs, cap, q, swi);
        else if (x_u8)
            grad_step(cur, bs, d, 1, scale, W, b, y + i, z, xs, logp + i, gW, gb, next, nbs, cap, q, swi);
        else if (d == 784)
            grad_step(cur, bs, 784, 0, scale, W, b, y + i, z, xs, logp + i, gW, gb, next, nbs, cap, q, swi);
        else
            grad_step(cur, bs, d, 0, scale, W, b, y + i, z, xs, logp + i, gW, gb, next, nbs, cap, q, swi);
        /* update: the step counters are torch's float32 state tensors */
        *stepW += 1.0f;
        *stepb += 1.0f;
        adam(W, gW, mW, vW, K * d, *stepW, lr, b1, b2, eps, wd, decoupled);
        adam(b, gb, mb, vb, K, *stepb, lr, b1, b2, eps, wd, decoupled);
        const void **t = cur;
        cur = next;
        next = t;
    }
    return 0;
}

/* z = scale * W x + b for the images [i, i + EVAL_BLOCK) of X (in order; the next block's rows
 * prefetched meanwhile), the images as floats in xs; returns how many there were. */
#define EVAL_BLOCK 128
INLINE int64_t forward_block(const void *X, int x_u8, int64_t d, int64_t n, int64_t i, float scale,
                             const float *W, const float *b, const void **rows, float *z, float *xs) {
    const size_t row_bytes = (size_t)d * (x_u8 ? 1 : sizeof(float));
    const int64_t bs = n - i < EVAL_BLOCK ? n - i : EVAL_BLOCK;
    const int64_t nbs = n - (i + bs) < EVAL_BLOCK ? n - (i + bs) : EVAL_BLOCK;
    for (int64_t r = 0; r < bs + nbs; r++) rows[r] = (const char *)X + (size_t)(i + r) * row_bytes;
    if (x_u8 && d == 784) forward(rows, bs, 784, 1, scale, W, b, z, xs, rows + bs, nbs);
    else if (x_u8) forward(rows, bs, d, 1, scale, W, b, z, xs, rows + bs, nbs);
    else if (d == 784) forward(rows, bs, 784, 0, scale, W, b, z, xs, rows + bs, nbs);
    else forward(rows, bs, d, 0, scale, W, b, z, xs, rows + bs, nbs);
    return bs;
}

/* Mean cross-entropy and accuracy of (W, b) on n images (rows of X, features X * scale),
 * as sums: *loss_sum (float64) and *correct. Scratch: rows (2 x EVAL_BLOCK pointers), z
 * (EVAL_BLOCK x K), xs (EVAL_BLOCK x d). Returns 0. */
int mlr_evaluate(const void *X, int x_u8, int64_t d, int64_t n, const int64_t *y, float scale,
                 const float *W, const float *b, const void **rows, float *z, float *xs,
                 double *loss_sum, int64_t *correct) {
    double loss = 0.0;
    int64_t right = 0;
    for (int64_t i = 0; i < n; i += EVAL_BLOCK) {
        const int64_t bs = forward_block(X, x_u8, d, n, i, scale, W, b, rows, z, xs);
        for (int64_t r = 0; r < bs; r++) {
            const float *zr = z + r * K;
            int best = 0;
            for (int k = 1; k < K; k++) best = zr[k] > zr[best] ? k : best;  /* first max, like argmax */
            double s = 0.0;
            for (int k = 0; k < K; k++) s += expf(zr[k] - zr[best]);
            loss += log(s) - (double)(zr[y[i + r]] - zr[best]);
            right += best == y[i + r];
        }
    }
    *loss_sum = loss;
    *correct = right;
    return 0;
}

/* The data term of the Hessian of the mean cross-entropy times V (for Newton-CG), as sums
 * over n images (rows of X, features X * scale), accumulated in float64:
 *   a_i = scale * V x_i + vb          (how the logits move along V)
 *   c_i = p_i * a_i - p_i (p_i . a_i)  ((diag(p) - p p^T) a_i, p_i = P's row i)
 *   hv += scale * c_i x_i^T,  hb += c_i
 * One pass over the images (uint8 rows are read as they are: a quarter of float32's traffic)
 * where torch makes two float32 GEMMs over a float copy. Scratch: rows (2 x EVAL_BLOCK
 * pointers), z (EVAL_BLOCK x K), xs (EVAL_BLOCK x d), tw (K x d), tb (K). Returns 0. */
int mlr_hvp(const void *X, int x_u8, int64_t d, int64_t n, float scale, const float *V, const float *vb,
            const float *P, const void **rows, float *z, float *xs, float *tw, float *tb,
            double *hv, double *hb) {
    for (int64_t j = 0; j < K * d; j++) hv[j] = 0.0;
    for (int k = 0; k < K; k++) hb[k] = 0.0;
    for (int64_t i = 0; i < n; i += EVAL_BLOCK) {
        const int64_t bs = forward_block(X, x_u8, d, n, i, scale, V, vb, rows, z, xs);
        for (int64_t r = 0; r < bs; r++) {
            const float *p = P + (i + r) * K;
            float *a = z + r * K, dot = 0.0f;
            for (int k = 0; k < K; k++) { a[k] *= p[k]; dot += a[k]; }
            for (int k = 0; k < K; k++) a[k] -= p[k] * dot;
        }
        if (d == 784) backward(xs, bs, 784, z, scale, 1.0f, tw, tb);
        else backward(xs, bs, d, z, scale, 1.0f, tw, tb);
        for (int64_t j = 0; j < K * d; j++) hv[j] += tw[j];
        for (int k = 0; k < K; k++) hb[k] += tb[k];
    }
    return 0;
}

int mlr_classes(void) { return K; }
/* the rows mlr_evaluate and mlr_hvp take at a time: their callers size the scratch by it */
int mlr_eval_block(void) { return EVAL_BLOCK; }
/* 1 where the build has AVX-512, whose 32 registers the 4 x 5 blocks above are sized for; on
 * AVX2 (16 registers of half the width) they spill to the stack and lose to torch (engines.py) */
int mlr_avx512(void) {
#ifdef __AVX512F__
    return 1;
#else
    return 0;
#endif
}
