"""Tiled stylization against untiled, where both fit: same pixels, no seams, same statistics.

Tolerance: 1e-4 on pixels (outputs span about [0, 1]; a uint8 step is 4e-3), and 1e-5 of the
largest value on codes and their statistics. Tiles and the whole image run the same float32
arithmetic on different array shapes, so only summation order differs: measured pixel
differences are about 4e-6.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import seeded_weights
from adain.models import ops
from adain.inference import memory, tiling
from adain.models.adain import code_size
from adain.models.adain.weights import model_from_state_dicts
from adain.models.interface import Params, arrays_of

H, W, TILE = 96, 76, 32  # 2 x 3 tiles of 4 code pixels; W is not a multiple of 8
PIXEL_TOL = 1e-4


def assert_close(got, want):
  want = np.asarray(want)
  assert np.max(np.abs(np.asarray(got) - want)) <= 1e-5 * np.max(np.abs(want))


@pytest.fixture(scope="module")
def model():
  return model_from_state_dicts(seeded_weights.vgg_state_dict(), seeded_weights.decoder_state_dict())


@pytest.fixture(scope="module")
def params(model):
  return Params(model.variant, arrays_of(model))


@pytest.fixture(scope="module")
def image():
  rng = np.random.default_rng(3)
  yy, xx = np.mgrid[0:H, 0:W]
  base = np.stack([np.sin(xx / 7.0), np.cos(yy / 5.0), np.sin((xx + yy) / 11.0)], -1) * 0.3 + 0.5
  return np.clip(base + 0.1 * rng.standard_normal((H, W, 3)), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def style(model):
  rng = np.random.default_rng(4)
  return model.encode_style(jnp.asarray(rng.random((1, 48, 40, 3), dtype=np.float32)))


@pytest.fixture(scope="module")
def untiled(model, image, style):
  out = model.generate(model.encode_content(jnp.asarray(image)[None]), style, 0.7)
  return np.asarray(out[0, :H, :W])


def test_windows_cover_each_axis_with_margins():
  for n in (16, 60, 64, 95, 200, 1001):
    for tile in (8, 32, 64, 512):
      nc, spans = code_size(n), tiling.windows(n, tile)
      assert [a for a, *_ in spans] == list(range(0, nc, tile // 8))  # cores partition the axis
      assert spans[-1][1] == nc
      for a, b, s, e in spans:
        assert 0 <= s <= a < b <= e <= nc
        assert a - s >= tiling.MARGIN or s == 0
        assert e - b >= tiling.MARGIN or e == nc
      assert len({e - s for *_, s, e in spans}) == 1  # one window length per axis (in code px)
      assert tiling.is_tiled(n, n, tile) == (len(spans) > 1)


def test_choose_tile_follows_the_budget():
  per_px = memory.BYTES_PER_PIXEL
  assert memory.choose_tile(1000, 1000, budget=1000 * 1000 * per_px) == 0
  tile = memory.choose_tile(8192, 8192, budget=2 * 2**30)
  assert tile in memory.TILE_SIZES and (tile + 16 * tiling.MARGIN) ** 2 * per_px <= 2 * 2**30
  assert memory.choose_tile(8192, 8192, budget=2 * 2**30) > memory.choose_tile(8192, 8192, budget=2**29)
  assert memory.choose_tile(4096, 4096, budget=1) == memory.TILE_SIZES[-1]
  assert memory.available_memory() > 0


def test_tiled_code_and_statistics_match_untiled(model, params, image):
  whole = model.encode_content(jnp.asarray(image)[None])
  code, stats = tiling.encode(params, image, TILE)
  assert_close(code, whole[0])
  mean, std = ops.mean_std(whole)
  assert_close(stats.mean, mean)
  assert_close(stats.std, std)

  mask = (np.arange(code_size(W))[None, :] < 5) * np.ones((code_size(H), 1), np.float32)
  _, stats = tiling.encode(params, image, TILE, mask, keep_code=False)
  for region, got in ((mask, stats[0]), (1 - mask, stats[1])):
    mean, std = ops.mean_std(whole, jnp.asarray(region)[None])
    assert_close(got.mean, mean[0])
    assert_close(got.std, std[0])


def test_tiled_matches_untiled(params, image, style, untiled):
  assert tiling.is_tiled(H, W, TILE)
  out = tiling.generate(params, image, style, jnp.float32(0.7), TILE)
  assert out.shape == untiled.shape and np.ptp(untiled) > 0.5  # a real image, not a flat one
  assert np.max(np.abs(out - untiled)) < PIXEL_TOL


def _seam_error(out, untiled):
  """Largest difference within 2 pixels of the tile borders (every TILE pixels)."""
  near = np.zeros((H, W), bool)
  for border in range(TILE, max(H, W), TILE):
    near[max(border - 2, 0):border + 2] = True
    near[:, max(border - 2, 0):border + 2] = True
  return np.max(np.abs(out - untiled)[near])


def test_no_seams_and_the_check_sees_them(params, image, style, untiled, monkeypatch):
  out = tiling.generate(params, image, style, jnp.float32(0.7), TILE)
  assert _seam_error(out, untiled) < PIXEL_TOL
  monkeypatch.setattr(tiling, "MARGIN", 1)  # too little context: the borders differ
  assert _seam_error(tiling.generate(params, image, style, jnp.float32(0.7), TILE), untiled) > 1e-2


@pytest.mark.slow  # the masked network compiled per tile
def test_tiled_with_mask_matches_untiled(model, params, image):
  rng = np.random.default_rng(5)
  styles = model.encode_style(jnp.asarray(rng.random((2, 32, 32, 3), dtype=np.float32)))
  mask = np.zeros((code_size(H), code_size(W)), np.float32)
  mask[:, :6] = 1
  code = model.encode_content(jnp.asarray(image)[None])
  whole = model.generate(code, styles, 1.0, jnp.asarray(mask)[None])
  out = tiling.generate(params, image, styles, jnp.float32(1.0), TILE, mask)
  assert np.max(np.abs(out - np.asarray(whole[0, :H, :W]))) < PIXEL_TOL


@pytest.mark.slow  # the Stylizer compiled tiled and untiled
def test_stylizer_tiles_on_request_only(model, image, style, untiled):
  from adain.inference.stylizer import Stylizer

  s = Stylizer(model)
  assert np.max(np.abs(s.generate(image, style, 0.7, tile=TILE) - untiled)) < PIXEL_TOL
  assert np.max(np.abs(s.generate(image, style, 0.7, tile=0) - untiled)) < PIXEL_TOL
  assert s.generate(image, style, 0.7).shape == (H, W, 3)  # auto: this small image fits untiled
  tiled_style = s.encode_style(image, tile=TILE)
  whole_style = s.encode_style(image, tile=0)
  assert_close(tiled_style.mean, whole_style.mean)
  assert_close(tiled_style.std, whole_style.std)
