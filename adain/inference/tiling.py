"""Tiled stylization: images larger than memory, with no seams between tiles.

Each tile's window is its core plus a margin on every side, so that the network sees the same
neighbourhood in a tile as in the whole image; only the cores are kept. A network's generate is
a chain of stages (adain.models.interface), each normalising its input with statistics over the
WHOLE image (AdaIN: one stage, the content code's mean and std; MicroAST: two, one per
modulated level). So the encoder pass keeps the content code's cores (32 bytes per image pixel
for AdaIN, 16 for MicroAST, against about 1 KB for AdaIN untiled) and merges their statistics;
each stage then runs tile by tile with them, keeping its output's cores and merging their
statistics for the next. Style codes of large images (and MicroAST's content's own code, for
alpha) merge the statistics of the network's style maps alike. Working memory is bounded by the
window size.

Geometry is in code pixels (``DOWNSAMPLE`` image pixels: 8 for AdaIN, 4 for MicroAST): windows
start on that grid, so the encoder's downsampling sees the same grid as in the whole image. A
window near the image's edge is shifted inwards rather than cut, so each axis has at most two
window lengths and a whole image compiles at most four window shapes.
"""

from __future__ import annotations

from types import ModuleType

import jax.numpy as jnp
import numpy as np

from adain.inference.programs import Program
from adain.models import network, ops
from adain.models.adain.codes import StyleCode
from adain.models.interface import Params


def windows(n: int, tile: int, net: ModuleType) -> list[tuple[int, int, int, int]]:
  """(core start, core end, window start, window end) in code pixels along an axis of n pixels.

  Cores of tile / DOWNSAMPLE code pixels partition the axis; each window reaches the network's
  TILE_MARGIN (the least with which cores match the untiled result to float rounding,
  tests/test_tiling.py) beyond its core except at the image's edges, and has the same length
  unless the axis is shorter, in which case the window is the whole axis.
  """
  nc, core = net.code_size(n), max(tile // net.DOWNSAMPLE, 1)
  length = core + 2 * net.TILE_MARGIN
  if length >= nc:
    return [(a, min(a + core, nc), 0, nc) for a in range(0, nc, core)]
  out = []
  for a in range(0, nc, core):
    s = min(max(a - net.TILE_MARGIN, 0), nc - length)
    out.append((a, min(a + core, nc), s, s + length))
  return out


def is_tiled(h: int, w: int, tile: int, net: ModuleType) -> bool:
  """Whether tiles of this size split the image at all (else it is stylized whole)."""
  return tile > 0 and (len(windows(h, tile, net)) > 1 or len(windows(w, tile, net)) > 1)


# The programs of a tile (a network's spec and arrays: see adain.inference.stylizer's).
@Program
def _encode(spec, arrays, window_bhwc):
  return Params(spec, arrays).bind().encode_content(window_bhwc)


@Program
def _style_maps(spec, arrays, window_bhwc):
  return tuple(Params(spec, arrays).bind().style_maps(window_bhwc))


@Program
def _stage(spec_k, arrays, x_bhwc, style, alpha, mask_bhw, stats: StyleCode):
  spec, k = spec_k
  model = Params(spec, arrays).bind()
  return model.stage(k, x_bhwc, style, 1.0 if alpha is None else alpha, mask_bhw, stats)


def _pixels(n: int, s: int, e: int, down: int) -> slice:
  return slice(down * s, min(down * e, n))


def _tiles(h: int, w: int, tile: int, net: ModuleType):
  for ys in windows(h, tile, net):
    for xs in windows(w, tile, net):
      yield ys, xs


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


class _Regions:
  """The statistics of an array assembled core by core: of all of it, or with a mask (at code
  resolution) of the foreground then the background, as ops.mean_std computes them."""

  def __init__(self, mask_hw: np.ndarray | None):
    self.mask_hw, self.moments = mask_hw, None

  def add(self, ys: slice, xs: slice, core_hwc: np.ndarray) -> None:
    x = core_hwc.reshape(-1, core_hwc.shape[-1]).astype(np.float64)
    if self.mask_hw is None:
      regions = [np.ones(len(x))]
    else:
      fg = self.mask_hw[ys, xs].ravel().astype(np.float64)
      regions = [fg, 1.0 - fg]
    tile = [_moments(x, r) for r in regions]
    self.moments = tile if self.moments is None else [_merge(a, b) for a, b in zip(self.moments, tile)]

  def stats(self) -> StyleCode:
    """Mean and std, one row per region."""
    means, stds = zip(*(_stats(m) for m in self.moments))
    return StyleCode(jnp.asarray(np.stack(means)), jnp.asarray(np.stack(stds)))


def encode(params: Params, image_hw3: np.ndarray, tile: int,
           mask_hw: np.ndarray | None = None) -> tuple[np.ndarray, StyleCode]:
  """The content code (h, w, C at code resolution) and its statistics (see _Regions), computed
  tile by tile."""
  net = network(params.spec.network)
  h, w = image_hw3.shape[:2]
  code, regions = None, _Regions(mask_hw)
  for (ya, yb, ys, ye), (xa, xb, xs, xe) in _tiles(h, w, tile, net):
    window = jnp.asarray(image_hw3[_pixels(h, ys, ye, net.DOWNSAMPLE), _pixels(w, xs, xe, net.DOWNSAMPLE)])
    core = np.asarray(_encode(params.spec, params.arrays, window[None])[0, ya - ys:yb - ys, xa - xs:xb - xs])
    if code is None:
      code = np.empty((net.code_size(h), net.code_size(w), core.shape[-1]), core.dtype)
    code[ya:yb, xa:xb] = core
    regions.add(slice(ya, yb), slice(xa, xb), core)
  return code, regions.stats()


def encode_style(params: Params, image_hw3: np.ndarray, tile: int):
  """The style code of one image (a batch of one), from its style maps' statistics merged tile
  by tile: equal to the untiled code to float rounding."""
  net = network(params.spec.network)
  h, w = image_hw3.shape[:2]
  maps: list[_Regions] | None = None
  for (ya, yb, ys, ye), (xa, xb, xs, xe) in _tiles(h, w, tile, net):
    window = jnp.asarray(image_hw3[_pixels(h, ys, ye, net.DOWNSAMPLE), _pixels(w, xs, xe, net.DOWNSAMPLE)])
    cores = _style_maps(params.spec, params.arrays, window[None])
    maps = maps or [_Regions(None) for _ in cores]
    for regions, m in zip(maps, cores):
      regions.add(slice(ya, yb), slice(xa, xb), np.asarray(m[0, ya - ys:yb - ys, xa - xs:xb - xs]))
  return params.bind().code_of([(s.mean, s.std) for s in (r.stats() for r in maps)])


def generate(params: Params, content_hw3: np.ndarray, style, alpha, tile: int,
             mask_hw: np.ndarray | None = None) -> np.ndarray:
  """Stylizes a content image tile by tile; the same result as untiled, to float rounding."""
  net = network(params.spec.network)
  h, w = content_hw3.shape[:2]
  if net.OWN_CODE:  # alpha is the code's: blended here with the whole image's own code
    if alpha != 1:
      style = style.interpolate(encode_style(params, content_hw3, tile), alpha)
    alpha = None
  x, stats = encode(params, content_hw3, tile, mask_hw)
  down = net.DOWNSAMPLE
  for k in range(net.STAGES):
    last = k == net.STAGES - 1
    out, regions = (np.empty((h, w, 3), np.float32), None) if last else (None, _Regions(mask_hw))
    for (ya, yb, ys, ye), (xa, xb, xs, xe) in _tiles(h, w, tile, net):
      mask = None if mask_hw is None else jnp.asarray(mask_hw[ys:ye, xs:xe], jnp.float32)[None]
      y = _stage((params.spec, k), params.arrays, jnp.asarray(x[ys:ye, xs:xe])[None], style, alpha,
                 mask, stats)[0]
      if last:
        rows, cols = _pixels(h, ya, yb, down), _pixels(w, xa, xb, down)
        out[rows, cols] = np.asarray(y[rows.start - down * ys:rows.stop - down * ys,
                                       cols.start - down * xs:cols.stop - down * xs])
      else:
        core = np.asarray(y[ya - ys:yb - ys, xa - xs:xb - xs])
        out = np.empty(x.shape[:2] + core.shape[-1:], core.dtype) if out is None else out
        out[ya:yb, xa:xb] = core
        regions.add(slice(ya, yb), slice(xa, xb), core)
    if not last:
      x, stats = out, regions.stats()
  return out
