// Images as the model's input, scaled exactly as the CLI scales them (adain.media.images.load_image):
// torchvision Resize(size)'s sizes and Pillow's BILINEAR resampling (Resample.c: a triangle filter
// widened by the scale factor when shrinking, a horizontal then a vertical pass; 8-bit images in
// 22-bit fixed point with a rounding to bytes after each pass, float images in double precision).

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

// The size an image is stylized at: its own when the shorter side is at most `limit`, else the
// shorter side becomes `limit` and the longer int(limit * long / short), as torchvision rounds.
export function fitSize(w, h, limit) {
  const short = Math.min(w, h);
  if (short <= limit) return [w, h];
  const long = Math.trunc((limit * Math.max(w, h)) / short);
  return w <= h ? [limit, long] : [long, limit];
}

// Pillow's precompute_coeffs for the bilinear filter: per output index, the first input index,
// the number of taps and the normalised weights (ksize per output).
function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filterscale;  // the bilinear filter's support is 1
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const ss = 1 / filterscale;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      const w = t < 1 ? 1 - t : 0;
      kk[xx * ksize + x] = w;
      ww += w;
    }
    if (ww !== 0) for (let x = 0; x < xmax; x++) kk[xx * ksize + x] /= ww;
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function fixedPoint(kk) {
  const out = new Int32Array(kk.length);
  for (let i = 0; i < kk.length; i++) out[i] = Math.trunc(kk[i] < 0 ? -0.5 + kk[i] * ONE : 0.5 + kk[i] * ONE);
  return out;
}

function clip8(v) {
  if (v >= ONE * 256) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / ONE);
}

// One pass over interleaved pixels of `channels` values: along x (stride 1) or y (stride w).
function pass(src, w, h, channels, outW, outH, alongX, bytes) {
  const n = alongX ? w : h;
  const { ksize, bounds, kk } = coefficients(n, alongX ? outW : outH);
  const k = bytes ? fixedPoint(kk) : kk;
  const dst = bytes ? new Uint8ClampedArray(outW * outH * channels) : new Float32Array(outW * outH * channels);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const o = alongX ? x : y;
      const first = bounds[2 * o], taps = bounds[2 * o + 1];
      const base = alongX ? (y * w + first) * channels : (first * w + x) * channels;
      const step = alongX ? channels : w * channels;
      for (let c = 0; c < channels; c++) {
        let s = bytes ? ONE / 2 : 0;
        for (let t = 0; t < taps; t++) s += src[base + t * step + c] * k[o * ksize + t];
        dst[(y * outW + x) * channels + c] = bytes ? clip8(s) : s;
      }
    }
  }
  return dst;
}

// Pillow's Image.resize((outW, outH), BILINEAR) of interleaved pixels: Uint8 (bytes) or Float32.
export function resize(src, w, h, channels, outW, outH) {
  const bytes = !(src instanceof Float32Array);
  let img = src;
  if (outW !== w) img = pass(img, w, h, channels, outW, h, true, bytes);
  if (outH !== h) img = pass(img, outW, h, channels, outW, outH, false, bytes);
  return img;
}
