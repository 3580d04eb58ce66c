"""Tiled stylization against untiled, where both fit: same pixels, no seams, same statistics,
for both networks (AdaIN: one stage; MicroAST: two modulated levels, each with the whole
image's statistics, and alpha through the content's own code, itself tiled).

Tolerance: 1e-4 on pixels (outputs span about [0, 1]; a uint8 step is 4e-3), and 1e-5 of the
largest value on codes and their statistics. Tiles and the whole image run the same float32
arithmetic on different array shapes, so only summation order differs: measured pixel
differences are about 4e-6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seeded_weights
from adain.inference import memory, tiling
from adain.models import network, ops
from adain.models.interface import Params, arrays_of

H = 96
# Per network: image width (not a multiple of the code grid) and a tile giving several tiles a side.
CASES = {"adain": (76, 32), "microast": (106, 16)}
PIXEL_TOL = 1e-4


def assert_close(got, want):
  want = np.asarray(want)
  assert np.max(np.abs(np.asarray(got) - want)) <= 1e-5 * np.max(np.abs(want))


@pytest.fixture(scope="module", params=list(CASES))
def net(request):
  return network(request.param)


@pytest.fixture(scope="module")
def size(net):
  return H, CASES[net.NAME][0], CASES[net.NAME][1]


@pytest.fixture(scope="module")
def model(net, microast_weights):
  if net.NAME == "microast":
    from adain.models.microast import weights

    return weights.model_from_state_dicts(weights.state_dicts(microast_weights, download=False))
  from adain.models.adain.weights import model_from_state_dicts

  return model_from_state_dicts(seeded_weights.vgg_state_dict(), seeded_weights.decoder_state_dict())


@pytest.fixture(scope="module")
def params(model):
  return Params(model.spec, arrays_of(model))


@pytest.fixture(scope="module")
def image(size):
  h, w, _ = size
  rng = np.random.default_rng(3)
  yy, xx = np.mgrid[0:h, 0:w]
  base = np.stack([np.sin(xx / 7.0), np.cos(yy / 5.0), np.sin((xx + yy) / 11.0)], -1) * 0.3 + 0.5
  return np.clip(base + 0.1 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def style(model):
  rng = np.random.default_rng(4)
  return model.encode_style(jnp.asarray(rng.random((1, 48, 40, 3), dtype=np.float32)))


def untiled_of(model, net, image, style, alpha, mask=None):
  x = jnp.asarray(image)[None]
  own = {"own_code": model.encode_style(x)} if net.OWN_CODE else {}
  out = model.generate(model.encode_content(x), style, jnp.float32(alpha), mask, **own)
  return np.asarray(out[0, :image.shape[0], :image.shape[1]])


@pytest.fixture(scope="module")
def untiled(model, net, image, style):
  return untiled_of(model, net, image, style, 0.7)


def test_windows_cover_each_axis_with_margins(net):
  down, margin = net.DOWNSAMPLE, net.TILE_MARGIN
  for n in (16, 60, 64, 95, 200, 1001):
    for tile in (8, 32, 64, 512):
      nc, spans = net.code_size(n), tiling.windows(n, tile, net)
      assert [a for a, *_ in spans] == list(range(0, nc, max(tile // down, 1)))  # cores partition the axis
      assert spans[-1][1] == nc
      for a, b, s, e in spans:
        assert 0 <= s <= a < b <= e <= nc
        assert a - s >= margin or s == 0
        assert e - b >= margin or e == nc
      assert len({e - s for *_, s, e in spans}) == 1  # one window length per axis (in code px)
      assert tiling.is_tiled(n, n, tile, net) == (len(spans) > 1)


def test_choose_tile_follows_the_budget(net):
  per_px = net.BYTES_PER_PIXEL
  assert memory.choose_tile(1000, 1000, net, budget=1000 * 1000 * per_px) == 0
  tile = memory.choose_tile(8192, 8192, net, budget=2 * 2**30)
  window = tile + 2 * net.DOWNSAMPLE * net.TILE_MARGIN
  assert tile in memory.TILE_SIZES and window ** 2 * per_px <= 2 * 2**30
  assert memory.choose_tile(8192, 8192, net, budget=2 * 2**30) > memory.choose_tile(8192, 8192, net, budget=2**28)
  assert memory.choose_tile(4096, 4096, net, budget=1) == memory.TILE_SIZES[-1]
  assert memory.available_memory() > 0


def test_tiled_code_and_statistics_match_untiled(model, net, params, image, size):
  h, w, tile = size
  whole = model.encode_content(jnp.asarray(image)[None])
  code, stats = tiling.encode(params, image, tile)
  assert_close(code, whole[0])
  mean, std = ops.mean_std(whole)
  assert_close(stats.mean, mean)
  assert_close(stats.std, std)

  mask = (np.arange(net.code_size(w))[None, :] < 5) * np.ones((net.code_size(h), 1), np.float32)
  _, stats = tiling.encode(params, image, tile, mask)
  for region, got in ((mask, stats[0]), (1 - mask, stats[1])):
    mean, std = ops.mean_std(whole, jnp.asarray(region)[None])
    assert_close(got.mean, mean[0])
    assert_close(got.std, std[0])


def test_tiled_style_code_matches_untiled(model, params, image, size):
  tiled = tiling.encode_style(params, image, size[2])
  whole = model.encode_style(jnp.asarray(image)[None])
  for got, want in zip(jax.tree.leaves(tiled), jax.tree.leaves(whole)):
    assert_close(got, want)


def test_tiled_matches_untiled(params, image, style, untiled, size, net):
  assert tiling.is_tiled(*size, net)
  out = tiling.generate(params, image, style, jnp.float32(0.7), size[2])
  assert out.shape == untiled.shape and np.ptp(untiled) > 0.5  # a real image, not a flat one
  assert np.max(np.abs(out - untiled)) < PIXEL_TOL


def _seam_error(out, untiled, tile):
  """Largest difference within 2 pixels of the tile borders (every ``tile`` pixels)."""
  h, w = untiled.shape[:2]
  near = np.zeros((h, w), bool)
  for border in range(tile, max(h, w), tile):
    near[max(border - 2, 0):border + 2] = True
    near[:, max(border - 2, 0):border + 2] = True
  return np.max(np.abs(out - untiled)[near])


def test_no_seams_and_the_check_sees_them(params, image, style, untiled, size, net, monkeypatch):
  tile = size[2]
  out = tiling.generate(params, image, style, jnp.float32(0.7), tile)
  assert _seam_error(out, untiled, tile) < PIXEL_TOL
  monkeypatch.setattr(net, "TILE_MARGIN", 1)  # too little context: the borders differ
  assert _seam_error(tiling.generate(params, image, style, jnp.float32(0.7), tile), untiled, tile) > 1e-2


@pytest.mark.slow  # the masked network compiled per tile
def test_tiled_with_mask_matches_untiled(model, net, params, image, size):
  h, w, tile = size
  rng = np.random.default_rng(5)
  styles = model.encode_style(jnp.asarray(rng.random((2, 32, 32, 3), dtype=np.float32)))
  mask = np.zeros((net.code_size(h), net.code_size(w)), np.float32)
  mask[:, :6] = 1
  whole = untiled_of(model, net, image, styles, 0.8, jnp.asarray(mask)[None])
  out = tiling.generate(params, image, styles, jnp.float32(0.8), tile, mask)
  assert np.max(np.abs(out - whole)) < PIXEL_TOL


@pytest.mark.slow  # the Stylizer compiled tiled and untiled
def test_stylizer_tiles_on_request_only(model, image, style, untiled, size):
  from adain.inference.stylizer import Stylizer

  tile = size[2]
  s = Stylizer(model)
  assert np.max(np.abs(s.generate(image, style, 0.7, tile=tile) - untiled)) < PIXEL_TOL
  assert np.max(np.abs(s.generate(image, style, 0.7, tile=0) - untiled)) < PIXEL_TOL
  assert s.generate(image, style, 0.7).shape == image.shape  # auto: this small image fits untiled
  for got, want in zip(jax.tree.leaves(s.encode_style(image, tile=tile)), jax.tree.leaves(s.encode_style(image, tile=0))):
    assert_close(got, want)
