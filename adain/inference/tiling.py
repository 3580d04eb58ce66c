"""Tiled stylization: images larger than memory, with no seams between tiles.

Each tile's window is its core plus a margin on every side, so that the encoder and decoder see
the same neighbourhood in a tile as in the whole image; only the cores are kept. AdaIN needs the
content code's mean and std over the WHOLE image, so the encoder pass keeps the code's cores (32
bytes per image pixel, against about 1 KB for the network untiled) and merges their statistics; the
decoder pass then normalises every tile with them. Working memory is bounded by the window size.

Geometry is in content-code pixels (8 image pixels): windows start on the 8-pixel grid, so the
encoder's poolings see the same grid as in the whole image. A window near the image's edge is
shifted inwards rather than cut, so each axis has at most two window lengths and a whole image
compiles at most four window shapes.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax.numpy as jnp
import numpy as np

from adain.inference.programs import Program
from adain.models import ops
from adain.models.adain import code_size
from adain.models.adain.codes import StyleCode
from adain.models.interface import Params

# Window margin in code pixels. A relu4_1 feature depends on the image 30 pixels beyond its own
# 8x8 cell, and a decoded pixel on the code 3.75 code pixels around its own, so 4 is the
# least margin with which cores match the untiled result to float rounding (tests/test_tiling.py).
MARGIN = 4
def windows(n: int, tile: int) -> list[tuple[int, int, int, int]]:
  """(core start, core end, window start, window end) in code pixels along an axis of n pixels.

  Cores of tile/8 code pixels partition the axis; each window reaches MARGIN beyond its core
  except at the image's edges, and has the same length (MARGIN on both sides of a full core)
  unless the axis is shorter, in which case the window is the whole axis.
  """
  nc, core = code_size(n), max(tile // 8, 1)
  length = core + 2 * MARGIN
  if length >= nc:
    return [(a, min(a + core, nc), 0, nc) for a in range(0, nc, core)]
  out = []
  for a in range(0, nc, core):
    s = min(max(a - MARGIN, 0), nc - length)
    out.append((a, min(a + core, nc), s, s + length))
  return out


def is_tiled(h: int, w: int, tile: int) -> bool:
  """Whether tiles of this size split the image at all (else it is stylized whole)."""
  return tile > 0 and (len(windows(h, tile)) > 1 or len(windows(w, tile)) > 1)


# The programs of a tile (a network's spec and arrays: see adain.inference.stylizer's).
@Program
def _encode(spec, arrays, window_bhwc):
  return Params(spec, arrays).bind().encode_content(window_bhwc)


@Program
def _decode(spec, arrays, code_bhwc, style: StyleCode, alpha, mask_bhw, content_stats: StyleCode):
  return Params(spec, arrays).bind().generate(code_bhwc, style, alpha, mask_bhw, content_stats)


def _pixels(n: int, s: int, e: int) -> slice:
  return slice(8 * s, min(8 * e, n))


def _tiles(h: int, w: int, tile: int):
  for ys in windows(h, tile):
    for xs in windows(w, tile):
      yield ys, xs


def _core_codes(params: Params, image_hw3: np.ndarray, tile: int) -> Iterator[tuple]:
  """(row core, column core, that core of the content code as (h, w, C) numpy) per tile."""
  h, w = image_hw3.shape[:2]
  for (ya, yb, ys, ye), (xa, xb, xs, xe) in _tiles(h, w, tile):
    window = jnp.asarray(image_hw3[_pixels(h, ys, ye), _pixels(w, xs, xe)])[None]
    code = _encode(params.spec, params.arrays, window)[0, ya - ys:yb - ys, xa - xs:xb - xs]
    yield slice(ya, yb), slice(xa, xb), np.asarray(code)


def _moments(x_nc: np.ndarray, w_n: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
  """Weighted count, mean and sum of squared deviations per channel, in float64."""
  n = float(w_n.sum())
  mean = (w_n @ x_nc) / max(n, 1.0)
  return n, mean, w_n @ (x_nc - mean) ** 2


def _merge(a, b):
  """Chan et al.'s pairwise update: the moments of the union of two sets from each one's."""
  (na, ma, sa), (nb, mb, sb) = a, b
  n = na + nb
  if n == 0:
    return a
  d = mb - ma
  return n, ma + d * nb / n, sa + sb + d * d * na * nb / n


def _stats(moments) -> tuple[np.ndarray, np.ndarray]:
  """ops.mean_std's mean and std (unbiased variance plus eps) from merged moments."""
  n, mean, m2 = moments
  return mean.astype(np.float32), np.sqrt(m2 / max(n - 1.0, 1.0) + ops.EPS).astype(np.float32)


def encode(params: Params, image_hw3: np.ndarray, tile: int, mask_hw: np.ndarray | None = None,
           keep_code: bool = True) -> tuple[np.ndarray | None, StyleCode]:
  """The content code (h/8, w/8, C) and its statistics, computed tile by tile.

  The statistics are a StyleCode: of the whole code, or with a mask (at code resolution) of
  the foreground then the background, as ops.mean_std computes them. ``keep_code=False``
  returns only the statistics (a style image's code).
  """
  h, w = image_hw3.shape[:2]
  code, moments = None, None
  for ys, xs, core in _core_codes(params, image_hw3, tile):
    if code is None and keep_code:
      code = np.empty((code_size(h), code_size(w), core.shape[-1]), core.dtype)
    if keep_code:
      code[ys, xs] = core
    x = core.reshape(-1, core.shape[-1]).astype(np.float64)
    regions = [np.ones(len(x))] if mask_hw is None else [mask_hw[ys, xs].ravel().astype(np.float64)]
    if mask_hw is not None:
      regions.append(1.0 - regions[0])
    tile_moments = [_moments(x, r) for r in regions]
    moments = tile_moments if moments is None else [_merge(a, b) for a, b in zip(moments, tile_moments)]
  means, stds = zip(*(_stats(m) for m in moments))
  return code, StyleCode(jnp.asarray(np.stack(means)), jnp.asarray(np.stack(stds)))


def generate(params: Params, content_hw3: np.ndarray, style: StyleCode, alpha, tile: int,
             mask_hw: np.ndarray | None = None) -> np.ndarray:
  """Stylizes a content image tile by tile; the same result as untiled, to float rounding."""
  h, w = content_hw3.shape[:2]
  code, content_stats = encode(params, content_hw3, tile, mask_hw)
  out = np.empty((h, w, 3), np.float32)
  for (ya, yb, ys, ye), (xa, xb, xs, xe) in _tiles(h, w, tile):
    mask = None if mask_hw is None else jnp.asarray(mask_hw[ys:ye, xs:xe], jnp.float32)[None]
    pixels = _decode(params.spec, params.arrays, jnp.asarray(code[ys:ye, xs:xe])[None], style, alpha, mask,
                     content_stats)[0]
    rows, cols = _pixels(h, ya, yb), _pixels(w, xa, xb)
    out[rows, cols] = np.asarray(pixels[rows.start - 8 * ys:rows.stop - 8 * ys,
                                        cols.start - 8 * xs:cols.stop - 8 * xs])
  return out
