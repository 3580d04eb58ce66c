"""Draws adain/assets/{content,style}.png: a procedural lake landscape and a swirly painting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ASSETS = Path(__file__).resolve().parent.parent / "adain" / "assets"
SS = 2  # Supersampling: draw at twice the size, then downsample for smooth edges.


def smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
  """White noise low-passed with a Gaussian of width ``scale`` pixels, normalised to [0, 1]."""
  fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
  gauss = np.exp(-2 * (np.pi * scale) ** 2 * (fx**2 + fy**2))
  spectrum = np.fft.rfft2(rng.standard_normal((h, w))) * gauss
  field = np.fft.irfft2(spectrum, s=(h, w))
  return (field - field.min()) / (field.max() - field.min())


def ridge(rng: np.random.Generator, w: int, base: float, amp: float, rough: int) -> np.ndarray:
  """A mountain skyline: fractal midpoint displacement, one height per column."""
  n = 2**rough + 1
  y = np.zeros(n)
  y[0], y[-1] = rng.uniform(-1, 1, 2)
  step, a = n - 1, 1.0
  while step > 1:
    half = step // 2
    y[half::step] = 0.5 * (y[:-1:step] + y[step::step]) + rng.uniform(-a, a, len(y[half::step]))
    step, a = half, a * 0.55
  return base - amp * np.interp(np.linspace(0, n - 1, w), np.arange(n), y)


def content(seed: int = 7, w: int = 512, h: int = 384) -> Image.Image:
  rng = np.random.default_rng(seed)
  W, H = w * SS, h * SS
  horizon = int(H * 0.66)
  yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
  # Sky: deep blue overhead to warm peach at the horizon, a sun with a glow, soft clouds.
  t = np.clip(yy / horizon, 0, 1)[..., None] ** 1.4
  img = (1 - t) * np.array([0.13, 0.28, 0.62]) + t * np.array([1.0, 0.72, 0.45])
  sx, sy = W * 0.74, horizon * 0.3
  dist = np.hypot(xx - sx, yy - sy) / SS
  img += np.exp(-dist / 60)[..., None] * np.array([0.45, 0.3, 0.1])
  img = np.where((dist < 26)[..., None], np.array([1.0, 0.93, 0.62]), img)
  clouds = np.clip((smooth_noise(rng, H, W, 28 * SS) - 0.55) * 4, 0, 1)
  clouds *= np.clip(1.2 - yy / horizon * 1.6, 0, 1)
  img = img * (1 - 0.8 * clouds[..., None]) + 0.8 * clouds[..., None] * np.array([1.0, 0.9, 0.88])
  # Three mountain ranges, hazy and bluish far away, dark green near; snow on the far peaks.
  tex = smooth_noise(rng, H, W, 3 * SS)
  layers = [
      (ridge(rng, W, horizon - 120 * SS, 90 * SS, 7), np.array([0.45, 0.47, 0.66]), True),
      (ridge(rng, W, horizon - 55 * SS, 60 * SS, 7), np.array([0.25, 0.36, 0.42]), False),
      (ridge(rng, W, horizon - 10 * SS, 28 * SS, 6), np.array([0.12, 0.3, 0.16]), False),
  ]
  for top, colour, snow in layers:
    mask = yy >= top[None, :]
    darken = 1 - 0.25 * np.clip((yy - top) / (100 * SS), 0, 1)
    shade = colour * (0.85 + 0.3 * tex[..., None]) * darken[..., None]
    if snow:
      cap = (yy - top < 22 * SS * (0.6 + tex)) & (top < horizon - 150 * SS)[None, :]
      snow_colour = np.array([0.93, 0.94, 0.98]) * (0.9 + 0.1 * tex[..., None])
      shade = np.where(cap[..., None], snow_colour, shade)
    img = np.where(mask[..., None], shade, img)
  # A house and pine trees on the near shore, drawn with PIL polygons.
  pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
  d = ImageDraw.Draw(pil)
  s = SS
  shore = horizon
  grass = [(0, shore - 18 * s), (200 * s, shore - 10 * s), (260 * s, shore), (0, shore)]
  d.polygon(grass, fill=(52, 92, 40))
  hx, hy = 70 * s, shore - 14 * s
  d.rectangle([hx, hy - 34 * s, hx + 52 * s, hy], fill=(214, 190, 150))
  roof = [(hx - 7 * s, hy - 33 * s), (hx + 26 * s, hy - 58 * s), (hx + 59 * s, hy - 33 * s)]
  d.polygon(roof, fill=(160, 40, 35))
  d.rectangle([hx + 8 * s, hy - 24 * s, hx + 20 * s, hy - 13 * s], fill=(255, 214, 90))
  d.rectangle([hx + 31 * s, hy - 20 * s, hx + 42 * s, hy], fill=(90, 55, 35))
  d.rectangle([hx + 36 * s, hy - 66 * s, hx + 43 * s, hy - 48 * s], fill=(120, 60, 50))
  for tx, th in [(25, 62), (148, 74), (170, 52), (196, 66), (300, 40), (318, 50)]:
    base = shore - (12 if tx < 220 else 2) * s
    tx, th = tx * s, th * s
    d.rectangle([tx - 2 * s, base - 8 * s, tx + 2 * s, base], fill=(70, 45, 30))
    for k in range(3):
      y0 = base - 6 * s - k * th // 4
      half = (16 - 4 * k) * s * th / (60 * s)
      tier = [(tx - half, y0), (tx, y0 - th // 2), (tx + half, y0)]
      d.polygon(tier, fill=(20 + 8 * k, 70 + 12 * k, 38))
  img = np.asarray(pil, dtype=np.float64) / 255
  # The lake: the scene mirrored in the horizon, rippled, darkened and tinted, with sun glints.
  rows = np.arange(horizon, H)
  depth = rows - horizon
  src_rows = np.clip(horizon - 1 - depth, 0, H - 1)
  ripple = (2 * SS * np.sin(depth / (2.5 * SS)) * (0.3 + depth / len(rows))).astype(int)
  cols = (np.arange(W)[None, :] + ripple[:, None]) % W
  water = img[src_rows[:, None], cols] * 0.72 + np.array([0.02, 0.08, 0.16])
  sparkle = smooth_noise(rng, len(rows), W // 4, 1.5).repeat(4, axis=1)  # Horizontally stretched.
  spread = (14 + depth[:, None] / 4) * SS  # The sun's path widens towards the viewer.
  glint = np.clip((sparkle - 0.6) * 5, 0, 1) * np.exp(-np.abs(xx[rows] - sx) / spread)
  water += glint[..., None] * np.array([0.8, 0.7, 0.45])
  img[horizon:] = water
  out = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
  return out.resize((w, h), Image.Resampling.LANCZOS)


def style(seed: int = 11, size: int = 512) -> Image.Image:
  rng = np.random.default_rng(seed)
  n = size * SS // 2  # Strokes at half the supersampled resolution are broad enough.
  yy, xx = np.mgrid[0:n, 0:n].astype(np.float64) / n
  # A flow field of a few vortices plus a wavy drift: the directions of the brush strokes.
  vx, vy = np.full_like(xx, 0.6), 0.5 * np.sin(6 * xx + 2)
  for cx, cy, spin in rng.uniform([0.1, 0.1, 0.6], [0.9, 0.9, 1.6], (5, 3)):
    dx, dy = xx - cx, yy - cy
    r2 = dx * dx + dy * dy + 0.03
    sign = rng.choice([-1, 1])
    vx += sign * spin * -dy / r2 * np.exp(-r2 * 12) * 0.5
    vy += sign * spin * dx / r2 * np.exp(-r2 * 12) * 0.5
  norm = np.hypot(vx, vy) + 1e-9
  vx, vy = vx / norm, vy / norm
  # Line integral convolution of streaky noise along the field: paint dragged by a brush.
  noise = smooth_noise(rng, n, n, 1.2) ** 3  # Bristle-wide blobs of paint.
  acc = np.zeros((n, n))
  for direction in (1, -1):
    px, py = xx * n, yy * n
    for _ in range(20):
      ix, iy = px.astype(int) % n, py.astype(int) % n
      acc += noise[iy, ix]
      px, py = px + 1.5 * direction * vx[iy, ix], py + 1.5 * direction * vy[iy, ix]
  strokes = (acc - acc.mean()) / acc.std()
  # Colour: a smooth field, bent along the flow, mapped to bold bands of a strong palette.
  palette = np.array([
      [0.07, 0.12, 0.42], [0.1, 0.32, 0.75], [0.16, 0.6, 0.7], [0.98, 0.84, 0.15],
      [0.96, 0.5, 0.1], [0.82, 0.13, 0.16], [0.45, 0.1, 0.45], [0.1, 0.12, 0.4],
  ])
  field = smooth_noise(rng, n, n, n / 14) + 0.25 * np.sin(14 * (xx * vy - yy * vx)) + 0.06 * strokes
  field = (field - field.min()) / (field.max() - field.min()) * (len(palette) - 1)
  lo = np.floor(field).astype(int).clip(0, len(palette) - 2)
  frac = np.clip((field - lo - 0.3) / 0.4, 0, 1)[..., None]  # Sharp-ish transitions between bands.
  img = palette[lo] * (1 - frac) + palette[lo + 1] * frac
  img *= (1 + 0.22 * np.tanh(strokes))[..., None]
  edges = np.abs(np.gradient(field, axis=0)) + np.abs(np.gradient(field, axis=1))
  img *= (1 - np.clip(edges * 4 - 0.3, 0, 0.6))[..., None]  # Dark outlines where colours meet.
  out = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
  out = out.resize((size, size), Image.Resampling.LANCZOS)
  # 256 colours, undithered: the streaks would make a full-colour PNG more than twice as big.
  return out.quantize(256, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def main() -> None:
  ASSETS.mkdir(parents=True, exist_ok=True)
  for name, img in [("content.png", content()), ("style.png", style())]:
    path = ASSETS / name
    img.save(path, optimize=True)
    print(f"{path}: {img.size[0]}x{img.size[1]}, {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
  main()
