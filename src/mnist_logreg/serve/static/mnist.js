// MNIST preprocessing and the linear model, in the browser: a port of mnist_logreg.preprocess
// (LeCun's recipe: polarity, Otsu, crop, fit into 20x20 with Pillow's Lanczos, centre of mass
// to (14, 14) with Pillow's bilinear affine, stretch, 256 levels) and of the model's transforms
// (deskew as transforms.py with grid_sample's bilinear sampling; cbrt). tests/test_web.py feeds
// the same images through this file and through Python and compares.
// A plain script (no modules): it runs from file:// as well as from the server.
"use strict";
(function (global) {
  const SIDE = 28, BOX = 20, WORK_SIZE = 1024;
  const OPENING = 10, FLAT_CAP = 0.6;                          // preprocess.py's lighting step
  const MAX_FILE_BYTES = 16 * 1024 * 1024, MAX_PIXELS = 25000000;  // and its limits

  // numpy's and Python's round(): halves to even
  function roundHalfEven(v) {
    const r = Math.round(v);
    return (Math.abs(v % 1) === 0.5 && r % 2 !== 0) ? r - 1 : r;
  }

  // Pillow's "L" conversion of RGBA pixels, composed onto paper that contrasts with the ink:
  // white, or black when what is drawn on a transparent picture is light (preprocess.flatten_alpha)
  const lum = (d, i) => (d[4 * i] * 19595 + d[4 * i + 1] * 38470 + d[4 * i + 2] * 7471 + 0x8000) >> 16;
  function inkStats(data, n) {
    let inked = 0, weight = 0, transparent = false;
    for (let i = 0; i < n; i++) { const a = data[4 * i + 3]; inked += lum(data, i) * a; weight += a; if (a < 255) transparent = true; }
    return { inked, weight, transparent };
  }
  const paperFor = s => (!s.transparent ? null : s.weight > 0 && s.inked > 128 * s.weight ? 0 : 255);
  function greyOn(data, n, paper) {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const a = data[4 * i + 3];
      out[i] = paper === null ? lum(data, i) : Math.floor((lum(data, i) * a + paper * (255 - a)) / 255 + 0.5);
    }
    return out;  // 0..255
  }
  const greyFromRGBA = (data, w, h) => greyOn(data, w * h, paperFor(inkStats(data, w * h)));

  // Image.reduce(f): f x f box averages, partial blocks at the edges averaged over what is there
  function reduce(grey, w, h, f) {
    const nw = Math.ceil(w / f), nh = Math.ceil(h / f), out = new Float64Array(nw * nh);
    for (let y = 0; y < nh; y++) for (let x = 0; x < nw; x++) {
      let s = 0, n = 0;
      for (let yy = y * f; yy < Math.min(h, (y + 1) * f); yy++)
        for (let xx = x * f; xx < Math.min(w, (x + 1) * f); xx++) { s += grey[yy * w + xx]; n++; }
      out[y * nw + x] = Math.round(s / n);
    }
    return { grey: out, w: nw, h: nh };
  }

  // the k-th smallest of a (0-based), by quickselect on a copy: the value a sort would put at
  // k, in linear time (sorting the pad's 78,400 pixels twice cost ~10 ms a live prediction)
  function kth(values, k) {
    const a = Float64Array.from(values);
    let lo = 0, hi = a.length - 1;
    while (hi > lo) {
      const p = a[(lo + hi) >> 1];
      let i = lo, j = hi;
      while (i <= j) {
        while (a[i] < p) i++;
        while (a[j] > p) j--;
        if (i <= j) { const t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
      }
      if (k <= j) hi = j; else if (k >= i) lo = i; else break;  // between j and i: all equal p
    }
    return a[k];
  }

  function median(values) {
    const n = values.length, m = n >> 1;
    return n % 2 ? kth(values, m) : (kth(values, m - 1) + kth(values, m)) / 2;
  }

  function percentile(values, q) {  // numpy's default (linear)
    const pos = (values.length - 1) * q, lo = Math.floor(pos), hi = Math.min(lo + 1, values.length - 1);
    const a = kth(values, lo);
    return a + (kth(values, hi) - a) * (pos - lo);
  }

  // Pillow's MedianFilter(3), edges replicated: the median of 9 values by a sorting network of
  // 19 compare-exchanges (Paeth's), unrolled: the middle value v4 is the median
  function median3x3(a, w, h) {
    const out = new Float64Array(w * h);
    for (let y = 0; y < h; y++) {
      const ym = Math.max(0, y - 1) * w, y0 = y * w, yp = Math.min(h - 1, y + 1) * w;
      for (let x = 0; x < w; x++) {
        const xm = Math.max(0, x - 1), xp = Math.min(w - 1, x + 1);
        let v0 = a[ym + xm], v1 = a[ym + x], v2 = a[ym + xp], v3 = a[y0 + xm], v4 = a[y0 + x], v5 = a[y0 + xp],
          v6 = a[yp + xm], v7 = a[yp + x], v8 = a[yp + xp], t;
        if (v1 > v2) { t = v1; v1 = v2; v2 = t; }
        if (v4 > v5) { t = v4; v4 = v5; v5 = t; }
        if (v7 > v8) { t = v7; v7 = v8; v8 = t; }
        if (v0 > v1) { t = v0; v0 = v1; v1 = t; }
        if (v3 > v4) { t = v3; v3 = v4; v4 = t; }
        if (v6 > v7) { t = v6; v6 = v7; v7 = t; }
        if (v1 > v2) { t = v1; v1 = v2; v2 = t; }
        if (v4 > v5) { t = v4; v4 = v5; v5 = t; }
        if (v7 > v8) { t = v7; v7 = v8; v8 = t; }
        if (v0 > v3) { t = v0; v0 = v3; v3 = t; }
        if (v5 > v8) { t = v5; v5 = v8; v8 = t; }
        if (v4 > v7) { t = v4; v4 = v7; v7 = t; }
        if (v3 > v6) { t = v3; v3 = v6; v6 = t; }
        if (v1 > v4) { t = v1; v1 = v4; v4 = t; }
        if (v2 > v5) { t = v2; v2 = v5; v5 = t; }
        if (v4 > v7) { t = v4; v4 = v7; v7 = t; }
        if (v4 > v2) { t = v4; v4 = v2; v2 = t; }
        if (v6 > v4) { t = v6; v6 = v4; v4 = t; }
        if (v4 > v2) { t = v4; v4 = v2; v2 = t; }
        out[y0 + x] = v4;
      }
    }
    return out;
  }

  // preprocess._filter: a square min or max filter of side 2r + 1, the window clipped at the
  // edges (van Herk / Gil-Werman running extremum), rows then columns. One copy per operation,
  // comparisons written out: passed Math.min as a function it took 22 ms of a 45 ms prediction
  function minFilter(a, w, h, r) {
    let src = a, sw = w, sh = h;
    const k = 2 * r + 1;
    for (let pass = 0; pass < 2; pass++) {
      const n = sw, m = Math.ceil((n + 2 * r) / k) * k, out = new Float64Array(sw * sh);
      const padded = new Float64Array(m), ahead = new Float64Array(m), behind = new Float64Array(m);
      for (let y = 0; y < sh; y++) {
        for (let i = 0; i < m; i++) padded[i] = src[y * sw + Math.min(n - 1, Math.max(0, i - r))];
        for (let b = 0; b < m; b += k) {
          ahead[b] = padded[b];
          for (let i = b + 1; i < b + k; i++) ahead[i] = padded[i] < ahead[i - 1] ? padded[i] : ahead[i - 1];
          behind[b + k - 1] = padded[b + k - 1];
          for (let i = b + k - 2; i >= b; i--) behind[i] = padded[i] < behind[i + 1] ? padded[i] : behind[i + 1];
        }
        for (let i = 0; i < n; i++) out[i * sh + y] = behind[i] < ahead[i + k - 1] ? behind[i] : ahead[i + k - 1];
      }
      src = out; [sw, sh] = [sh, sw];  // transposed: the second pass filters the columns
    }
    return src;
  }

  function maxFilter(a, w, h, r) {  // minFilter of the negated image, negated
    const neg = new Float64Array(a.length);
    for (let i = 0; i < a.length; i++) neg[i] = -a[i];
    const out = minFilter(neg, w, h, r);
    for (let i = 0; i < out.length; i++) out[i] = -out[i];
    return out;
  }

  // preprocess._every_window_holds: does every window of side 2r + 1 (clipped at the edges) hold
  // a pixel equal to v? Running counts along each row, then along each column of those
  function everyWindowHolds(a, w, h, r, v) {
    let found = 0;  // fewer than the disjoint windows that fit (a photo's noisy minimum): no
    for (let i = 0; i < w * h; i++) if (a[i] === v) found++;
    if (found < Math.floor(w / (2 * r + 1)) * Math.floor(h / (2 * r + 1))) return false;
    const rows = new Uint8Array(w * h), counts = new Int32Array(Math.max(w, h) + 2 * r + 1);
    for (let y = 0; y < h; y++) {  // rows[x * h + y]: the row's window around x holds v (transposed)
      let c = 0;
      for (let x = 0; x < w; x++) { c += a[y * w + x] === v ? 1 : 0; counts[r + 1 + x] = c; }  // r + 1 + x: 0..x
      for (let x = r + 1 + w; x < w + 2 * r + 1; x++) counts[x] = c;
      for (let x = 0; x < w; x++) rows[x * h + y] = counts[x + 2 * r + 1] > counts[x] ? 1 : 0;
    }
    for (let x = 0; x < w; x++) {  // each column of those, the same way
      let c = 0;
      for (let y = 0; y < h; y++) { c += rows[x * h + y]; counts[r + 1 + y] = c; }
      for (let y = r + 1 + h; y < h + 2 * r + 1; y++) counts[y] = c;
      for (let y = 0; y < h; y++) if (!(counts[y + 2 * r + 1] > counts[y])) return false;
    }
    return true;
  }

  // preprocess.paper_level and the mapping after it: paper -> 0, full ink stays 1. On clean paper
  // (the pad's) every window holds the picture's minimum, and the opening is that minimum: the two
  // filters are skipped: a live prediction's preprocessing 1.8x quicker (bench/preprocess_speed.py)
  function flattenLighting(a, w, h) {
    const r = Math.floor(Math.max(w, h) / OPENING);
    let low = Infinity;
    for (let i = 0; i < w * h; i++) if (a[i] < low) low = a[i];
    const level = everyWindowHolds(a, w, h, r, low) ? null : maxFilter(minFilter(a, w, h, r), w, h, r);
    const out = new Float64Array(w * h);
    for (let i = 0; i < w * h; i++) {
      const l = Math.min(level === null ? low : level[i], FLAT_CAP);
      out[i] = Math.max((a[i] - l) / (1 - l), 0);
    }
    return out;
  }

  function otsu(a) {  // preprocess.otsu_threshold: 256 bins on [0, 1]
    const hist = new Float64Array(256);
    for (let i = 0; i < a.length; i++) hist[Math.min(255, Math.floor(a[i] * 256))] += 1;
    let total = a.length, omega = 0, mu = 0, muT = 0;
    for (let i = 0; i < 256; i++) muT += hist[i] / total * (i + 0.5) / 256;
    let best = -Infinity, arg = 0;
    for (let i = 0; i < 256; i++) {
      omega += hist[i] / total;
      mu += hist[i] / total * (i + 0.5) / 256;
      let between = (muT * omega - mu) ** 2 / (omega * (1 - omega));
      if (!Number.isFinite(between)) between = -1;
      if (between > best) { best = between; arg = i; }
    }
    return (arg + 1) / 256;
  }

  // Pillow's Lanczos resampling (Resample.c, 32-bit float images): horizontal pass, then vertical
  function lanczos(x) {
    if (x === 0) return 1;
    if (x <= -3 || x >= 3) return 0;
    const s = v => (v === 0 ? 1 : Math.sin(Math.PI * v) / (Math.PI * v));
    return s(x) * s(x / 3);
  }

  function coefficients(inSize, outSize) {
    const scale = inSize / outSize, filterscale = Math.max(scale, 1), support = 3 * filterscale;
    const out = [];
    for (let x = 0; x < outSize; x++) {
      const center = (x + 0.5) * scale, ss = 1 / filterscale;
      const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
      const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
      const k = new Float64Array(xmax);
      let ww = 0;
      for (let i = 0; i < xmax; i++) { k[i] = lanczos((i + xmin - center + 0.5) * ss); ww += k[i]; }
      if (ww !== 0) for (let i = 0; i < xmax; i++) k[i] /= ww;
      out.push({ xmin, k });
    }
    return out;
  }

  function resize(a, w, h, nw, nh) {  // a pass whose size does not change is skipped, as Pillow does
    const cx = coefficients(w, nw), cy = coefficients(h, nh);
    let tmp = a;
    if (nw !== w) tmp = new Float32Array(nw * h);
    if (nw !== w) for (let y = 0; y < h; y++) for (let x = 0; x < nw; x++) {
      const { xmin, k } = cx[x];
      let s = 0;
      for (let i = 0; i < k.length; i++) s += a[y * w + xmin + i] * k[i];
      tmp[y * nw + x] = s;
    }
    if (nh === h) return Float32Array.from(tmp);
    const out = new Float32Array(nw * nh);
    for (let y = 0; y < nh; y++) for (let x = 0; x < nw; x++) {
      const { xmin, k } = cy[y];
      let s = 0;
      for (let i = 0; i < k.length; i++) s += tmp[(xmin + i) * nw + x] * k[i];
      out[y * nw + x] = s;
    }
    return out;
  }

  function centreOfMass(a, w, h) {
    let t = 0, r = 0, c = 0;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) { const v = a[y * w + x]; t += v; r += y * v; c += x * v; }
    return [r / t, c / t];
  }

  // Pillow's affine transform with bilinear filtering on a 32-bit float image: the output pixel
  // (x, y) samples the input at (x + 0.5 + dx, y + 0.5 + dy); outside the image it is 0
  function shift(a, w, h, dx, dy) {
    const out = new Float32Array(w * h);
    const at = (x, y) => a[Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))];
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      let xin = x + 0.5 + dx, yin = y + 0.5 + dy;
      if (xin < 0 || xin >= w || yin < 0 || yin >= h) continue;
      xin -= 0.5; yin -= 0.5;
      const x0 = Math.floor(xin), y0 = Math.floor(yin), fx = xin - x0, fy = yin - y0;
      const v1 = at(x0, y0) + (at(x0 + 1, y0) - at(x0, y0)) * fx;
      const v2 = (y0 + 1 >= 0 && y0 + 1 < h) ? at(x0, y0 + 1) + (at(x0 + 1, y0 + 1) - at(x0, y0 + 1)) * fx : v1;
      out[y * w + x] = v1 + (v2 - v1) * fy;
    }
    return out;
  }

  class ImageError extends Error {}

  // grey: 0..255 values, row-major, w x h -> Float32Array(784) in [0, 1], or throws ImageError
  function preprocess(grey, w, h, polarity) { return preprocessWithExtent(grey, w, h, polarity).input; }

  // preprocess, and the ink's extent: its bounding box's longer side over the picture's
  // polarity: "auto" (the border is background) or "dark-on-light" (the pad: paper is white)
  function preprocessWithExtent(grey, w, h, polarity = "auto") {
    if (w * h === 0) throw new ImageError("empty image");
    if (Math.max(w, h) > WORK_SIZE) ({ grey, w, h } = reduce(grey, w, h, Math.ceil(Math.max(w, h) / WORK_SIZE)));
    const n = w * h;
    let a = new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = grey[i] / 255;
    const border = new Float64Array(2 * (w + h));
    for (let x = 0; x < w; x++) { border[2 * x] = a[x]; border[2 * x + 1] = a[(h - 1) * w + x]; }
    for (let y = 0; y < h; y++) { border[2 * w + 2 * y] = a[y * w]; border[2 * w + 2 * y + 1] = a[y * w + w - 1]; }
    if (polarity === "dark-on-light" || (polarity === "auto" && median(border) > 0.5)) for (let i = 0; i < n; i++) a[i] = 1 - a[i];
    if (Math.min(w, h) >= 56) a = flattenLighting(median3x3(new Float32Array(a), w, h), w, h);  // Pillow filters float32
    const blank = "blank image (no ink found)";
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < n; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i]; }
    if (hi - lo < 0.08) throw new ImageError(blank);
    const t = otsu(a);
    let nb = 0;
    for (let i = 0; i < n; i++) if (a[i] < t) nb++;
    if (nb === 0 || nb === n) throw new ImageError(blank);
    const below = new Float64Array(nb), above = new Float64Array(n - nb);
    for (let i = 0, j = 0, k = 0; i < n; i++) if (a[i] < t) below[j++] = a[i]; else above[k++] = a[i];
    const bg = median(below), fg = percentile(above, 0.9);
    if (fg - bg < 0.08) throw new ImageError(blank);
    const cut = 0.5 * (t - bg) / (fg - bg), inkAt = Math.max(t, (bg + fg) / 2);
    let y0 = h, y1 = -1, x0 = w, x1 = -1;
    const norm = new Float64Array(w * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const v = a[y * w + x];
      if (v >= inkAt) { y0 = Math.min(y0, y); y1 = Math.max(y1, y); x0 = Math.min(x0, x); x1 = Math.max(x1, x); }
      let n = Math.min(1, Math.max(0, (v - bg) / (fg - bg)));
      norm[y * w + x] = n < cut ? 0 : n;
    }
    if (y1 < 0) throw new ImageError(blank);
    const ch = y1 - y0 + 1, cw = x1 - x0 + 1, crop = new Float32Array(ch * cw);
    const extent = Math.max(ch, cw) / Math.max(w, h);
    for (let y = 0; y < ch; y++) for (let x = 0; x < cw; x++) crop[y * cw + x] = norm[(y0 + y) * w + x0 + x];
    const scale = BOX / Math.max(ch, cw);
    const nw = Math.max(1, roundHalfEven(cw * scale)), nh = Math.max(1, roundHalfEven(ch * scale));
    const small = resize(crop, cw, ch, nw, nh);
    const canvas = new Float32Array(SIDE * SIDE);
    const top = (SIDE - nh) >> 1, left = (SIDE - nw) >> 1;
    let sum = 0;
    for (let y = 0; y < nh; y++) for (let x = 0; x < nw; x++) {
      const v = Math.min(1, Math.max(0, small[y * nw + x]));
      canvas[(top + y) * SIDE + left + x] = v; sum += v;
    }
    if (!(sum > 0)) throw new ImageError(blank);
    const [cy, cx] = centreOfMass(canvas, SIDE, SIDE);
    const out = shift(canvas, SIDE, SIDE, cx - 14, cy - 14);
    let mx = 0;
    for (let i = 0; i < out.length; i++) { out[i] = Math.min(1, Math.max(0, out[i])); mx = Math.max(mx, out[i]); }
    for (let i = 0; i < out.length; i++) {
      const v = Math.fround(out[i] / mx);
      out[i] = Math.fround(roundHalfEven(Math.fround(v * 255)) / 255);
    }
    return { input: out, extent };
  }

  // transforms.deskew for one 28x28 image: shear by the moments, centre of mass to (14, 14),
  // bilinear sampling with zeros outside (grid_sample, align_corners=False)
  function deskew(x) {
    let total = 0, r0 = 0, c0 = 0;
    for (let r = 0; r < SIDE; r++) for (let c = 0; c < SIDE; c++) { const v = x[r * SIDE + c]; total += v; r0 += r * v; c0 += c * v; }
    total = Math.max(total, 1e-6); r0 /= total; c0 /= total;
    let varR = 0, cov = 0;
    for (let r = 0; r < SIDE; r++) for (let c = 0; c < SIDE; c++) {
      const v = x[r * SIDE + c];
      varR += v * (r - r0) * (r - r0); cov += v * (r - r0) * (c - c0);
    }
    varR /= total; cov /= total;
    const alpha = cov / Math.max(varR, 1e-6);
    const px = (r, c) => (r >= 0 && r < SIDE && c >= 0 && c < SIDE ? x[r * SIDE + c] : 0);
    const out = new Float32Array(SIDE * SIDE);
    for (let R = 0; R < SIDE; R++) for (let C = 0; C < SIDE; C++) {
      const sr = R + r0 - 14, sc = C + alpha * (R - 14) + c0 - 14;
      const ry = Math.floor(sr), cx = Math.floor(sc), fy = sr - ry, fx = sc - cx;
      out[R * SIDE + C] = px(ry, cx) * (1 - fy) * (1 - fx) + px(ry, cx + 1) * (1 - fy) * fx
        + px(ry + 1, cx) * fy * (1 - fx) + px(ry + 1, cx + 1) * fy * fx;
    }
    return out;
  }

  const TRANSFORMS = {
    none: x => x,
    deskew,
    cbrt: x => Float32Array.from(x, v => Math.cbrt(Math.max(0, v))),
  };

  // -- the model as model.js carries it (web.py): base64 arrays, decoded once per object ------
  const unpacked = new WeakMap();

  function bytes(b64) {
    const s = atob(b64), u = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
    return u;
  }
  const f32 = b64 => new Float32Array(bytes(b64).buffer);
  function half(h) {  // an IEEE 754 half-precision number
    const sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e === 0) return sign * m * 2 ** -24;
    if (e === 31) return m ? NaN : sign * Infinity;
    return sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  const f16 = b64 => Float64Array.from(new Uint16Array(bytes(b64).buffer), half);

  function unpack(model) {
    let m = unpacked.get(model);
    if (m) return m;
    const classes = model.classes || ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    let weights = model.weights, bias = model.bias;
    if (typeof weights === "string") {
      const flat = f32(weights);
      weights = classes.map((_, k) => flat.subarray(784 * k, 784 * (k + 1)));
    }
    if (typeof bias === "string") bias = Array.from(f32(bias));
    const t = model.trust || null, L = t && t.likeness;
    const likeness = L ? {
      k: L.k, d: L.k + 3, mean: f16(L.mean), basis: f16(L.basis), centres: f16(L.centres), whiten: f16(L.whiten),
      logDet: f16(L.log_det), noise: L.noise, table: f32(L.table), blur: L.blur, ink: L.ink } : null;
    m = { weights, bias, classes, transform: model.transform || "none", trust: t, likeness, rules: model.rules,
          noun: model.noun || "digit" };
    unpacked.set(model, m);
    return m;
  }

  // model.js's model: the input the model reads (after its transform), its logits and the
  // plain softmax probabilities
  function predict(model, x) {
    const m = unpack(model);
    const input = TRANSFORMS[m.transform](x);
    const logits = m.bias.map((b, k) => {
      let s = b;
      const w = m.weights[k];
      for (let i = 0; i < input.length; i++) s += w[i] * input[i];
      return s;
    });
    const top = Math.max(...logits), e = logits.map(v => Math.exp(v - top)), z = e.reduce((p, q) => p + q, 0);
    return { input, logits, probabilities: e.map(v => v / z) };
  }

  // -- trust.py in the page: the digit-likeness and the calibration ---------------------------
  // trust.likeness_features: deskew, then the separable blur (zeros beyond the border)
  function blur(img, g) {
    const tmp = new Float64Array(784), out = new Float64Array(784);
    for (let r = 0; r < SIDE; r++) for (let c = 0; c < SIDE; c++) {
      let s = 0;
      for (let t = -3; t <= 3; t++) if (r + t >= 0 && r + t < SIDE) s += g[t + 3] * img[(r + t) * SIDE + c];
      tmp[r * SIDE + c] = s;
    }
    for (let r = 0; r < SIDE; r++) for (let c = 0; c < SIDE; c++) {
      let s = 0;
      for (let t = -3; t <= 3; t++) if (c + t >= 0 && c + t < SIDE) s += tmp[r * SIDE + c + t] * g[t + 3];
      out[r * SIDE + c] = s;
    }
    return out;
  }

  // trust.extent_features: rows and columns the ink spans, total ink
  function extents(x, ink) {
    let r0 = SIDE, r1 = -1, c0 = SIDE, c1 = -1, total = 0;
    for (let r = 0; r < SIDE; r++) for (let c = 0; c < SIDE; c++) {
      const v = x[r * SIDE + c];
      total += v;
      if (v > ink) { r0 = Math.min(r0, r); r1 = Math.max(r1, r); c0 = Math.min(c0, c); c1 = Math.max(c1, c); }
    }
    return [Math.max(0, r1 - r0 + 1), Math.max(0, c1 - c0 + 1), total];
  }

  // trust.Likeness.score: the closest class's Gaussian on the components, plus the distance outside
  function likenessScore(lk, x) {
    const f = blur(deskew(x), lk.blur), { k, d } = lk;
    const diff = new Float64Array(784);
    let total = 0, inside = 0;
    for (let i = 0; i < 784; i++) { diff[i] = f[i] - lk.mean[i]; total += diff[i] * diff[i]; }
    const z = new Float64Array(d);
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let i = 0, row = 784 * j; i < 784; i++) s += lk.basis[row + i] * diff[i];
      z[j] = s; inside += s * s;
    }
    z.set(extents(x, lk.ink), k);
    const tri = d * (d + 1) / 2, classes = lk.logDet.length;
    let closest = Infinity;
    for (let c = 0; c < classes; c++) {
      let q = lk.logDet[c], p = c * tri;
      for (let r = 0; r < d; r++) {
        let s = 0;
        for (let j = 0; j <= r; j++) s += lk.whiten[p + j] * (z[j] - lk.centres[c * d + j]);
        p += r + 1; q += s * s;
      }
      closest = Math.min(closest, q);
    }
    return -0.5 * (closest + Math.max(0, total - inside) / lk.noise);
  }

  // trust.Likeness.of_score: the share of the held-out table at or below the score
  function likenessOf(lk, score) {
    let lo = 0, hi = lk.table.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (lk.table[mid] <= score) lo = mid + 1; else hi = mid; }
    return lo / lk.table.length;
  }

  // trust.Calibrator: temperature, then top-label Platt scaling with the likeness
  function calibrate(t, logits, like) {
    const T = t ? t.temperature : 1, a = t ? t.a : 1, b = t ? t.b : 0, c = t ? t.c : 0;
    const z = logits.map(v => v / T);
    let top = 0;
    for (let i = 1; i < z.length; i++) if (z[i] > z[top]) top = i;
    let m = -Infinity;
    z.forEach((v, i) => { if (i !== top) m = Math.max(m, v); });
    const e = z.map((v, i) => (i === top ? 0 : Math.exp(v - m))), sum = e.reduce((p, q) => p + q, 0);
    let u = a * (z[top] - (m + Math.log(sum))) + b;
    if (c && like !== null) u += c * Math.log(Math.min(Math.max(like, 1 / t.levels), t.unusual) / t.unusual);
    const share = e.map(v => v / sum), q2 = Math.max(...share);
    const pTop = Math.max(1 / (1 + Math.exp(-u)), q2 / (1 + q2));
    return share.map((v, i) => (i === top ? pTop : v * (1 - pTop)));
  }

  // -- answers.py in the page: one state per input ------------------------------------------
  function decide(rules, probabilities, like, top) {
    const order = probabilities.map((p, i) => [p, i]).sort((p, q) => q[0] - p[0] || p[1] - q[1]).map(o => o[1]);
    if (top === undefined) top = order[0];
    const second = order.find(i => i !== top) ?? top;
    if (like !== null && like < rules.not_a_digit_below) return ["not-a-digit", top, second];
    if (probabilities[top] < rules.sure_at || (like !== null && like < rules.unusual_below)) return ["unsure", top, second];
    return ["digit", top, second];
  }

  // answers.Answer.message
  function message(a, classes, noun, rules) {
    const pct = p => `${(100 * p).toFixed(1)}%`;
    if (a.state === "blank") return "blank: no ink found";
    if (a.state === "too-small") return `too small to read: draw or crop the ${noun} larger`;
    if (a.state === "not-a-digit") {
      return `${noun === "digit" ? "not a digit" : "unlike the images it learned"}: stranger than ` +
        `${(100 * (1 - a.likeness)).toFixed(1)}% of real ${noun}s (closest: ${classes[a.label]})`;
    }
    const top = `${classes[a.label]} (${pct(a.probabilities[a.label])})`;
    if (a.state === "unsure") {
      const why = a.likeness !== null && a.likeness < rules.unusual_below ? ` (unusual for a ${noun})` : "";
      return `unsure${why}: ${top} or ${classes[a.runnerUp]} (${pct(a.probabilities[a.runnerUp])})`;
    }
    return top;
  }

  // answers.Predictor.answers for one input in MNIST form (784 values in [0, 1])
  function answerPixels(model, x) {
    const m = unpack(model);
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < x.length; i++) { lo = Math.min(lo, x[i]); hi = Math.max(hi, x[i]); }
    if (hi - lo < m.rules.blank_contrast) return finish(m, { state: "blank", input: x });
    const r = predict(model, x);
    const like = m.likeness ? likenessOf(m.likeness, likenessScore(m.likeness, x)) : null;
    const probabilities = calibrate(m.trust, r.logits, like);
    const top = r.logits.indexOf(Math.max(...r.logits));  // the calibration keeps it on top
    const [state, label, runnerUp] = decide(m.rules, probabilities, like, top);
    return finish(m, { state, label, runnerUp, probabilities, likeness: like, input: x, seen: r.input,
                       logits: r.logits, raw: r.probabilities });
  }

  // answers.Predictor.answer for a picture: blank, too small, or the model's answer
  function answer(model, grey, w, h, polarity = "auto") {
    const m = unpack(model);
    let pre;
    try { pre = preprocessWithExtent(grey, w, h, polarity); } catch (e) {
      if (e instanceof ImageError && /blank/.test(e.message)) return finish(m, { state: "blank" });
      throw e;
    }
    if (pre.extent < m.rules.min_ink_side) return finish(m, { state: "too-small", input: pre.input });
    return answerPixels(model, pre.input);
  }

  function finish(m, a) {
    a.message = message(a, m.classes, m.noun, m.rules);
    return a;
  }

  // answers.Predictor.explain: (W_label - W_against) * what the model read, pixel by pixel;
  // its sum plus the bias difference is the logit difference
  function explain(model, seen, label, against) {
    const m = unpack(model), wa = m.weights[label], wb = m.weights[against];
    const map = new Float64Array(784);
    for (let i = 0; i < 784; i++) map[i] = (wa[i] - wb[i]) * seen[i];
    return { map, bias: m.bias[label] - m.bias[against] };
  }

  // A picture's width and height from its first bytes (PNG, GIF, BMP, JPEG, WebP), or null:
  // the page refuses one over MAX_PIXELS before decoding it, as preprocess.load_image does
  function imageSize(b) {
    const u16 = (i, le) => (le ? b[i] | b[i + 1] << 8 : b[i] << 8 | b[i + 1]);
    const u32 = (i, le) => (le ? u16(i, true) + u16(i + 2, true) * 65536 : u16(i) * 65536 + u16(i + 2));
    const tag = (i, t) => String.fromCharCode(...b.subarray(i, i + t.length)) === t;
    if (b.length >= 24 && b[0] === 0x89 && tag(1, "PNG")) return [u32(16), u32(20)];
    if (b.length >= 10 && tag(0, "GIF8")) return [u16(6, true), u16(8, true)];
    if (b.length >= 26 && tag(0, "BM")) return [Math.abs(u32(18, true) | 0), Math.abs(u32(22, true) | 0)];
    if (b.length >= 30 && tag(0, "RIFF") && tag(8, "WEBP")) {
      if (tag(12, "VP8X")) return [1 + (b[24] | b[25] << 8 | b[26] << 16), 1 + (b[27] | b[28] << 8 | b[29] << 16)];
      if (tag(12, "VP8L")) { const v = u32(21, true); return [1 + (v & 0x3fff), 1 + ((v >>> 14) & 0x3fff)]; }
      if (tag(12, "VP8 ")) return [u16(26, true) & 0x3fff, u16(28, true) & 0x3fff];
    }
    if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
      for (let i = 2; i + 9 < b.length;) {
        if (b[i] !== 0xff) { i++; continue; }
        const marker = b[i + 1];
        if (marker === 0xff) { i++; continue; }
        if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) return [u16(i + 7), u16(i + 5)];
        if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { i += 2; continue; }
        i += 2 + u16(i + 2);
      }
    }
    return null;
  }

  // preprocess.load_image's refusals, word for word, for a file the page is given
  function mib(n) { return `${(n / 1048576).toFixed(1).replace(/\.0$/, "")} MiB`; }  // _files.mib
  function refusal(name, size, dims) {
    if (!size) return `${name}: empty file`;
    if (size > MAX_FILE_BYTES) return `${name}: ${mib(size)}, over the ${mib(MAX_FILE_BYTES)} limit`;
    if (dims && dims[0] * dims[1] > MAX_PIXELS)
      return `${name}: ${(dims[0] * dims[1]).toLocaleString("en-US")} pixels (width x height) is over the limit of ` +
        MAX_PIXELS.toLocaleString("en-US");
    return null;
  }

  global.Mnist = { imageSize, refusal, inkStats, paperFor, greyOn, MAX_FILE_BYTES, MAX_PIXELS, WORK_SIZE, reduce, preprocess, preprocessWithExtent, predict, greyFromRGBA, deskew, ImageError, roundHalfEven,
                   TRANSFORMS, unpack, likenessScore, likenessOf, calibrate, decide, message, answer, answerPixels,
                   explain };
})(typeof window !== "undefined" ? window : globalThis);
