"""The paper's Fig. 6 model variants in the library: shapes, batch norm at inference, weights
files of each variant, bucketed stylization equal to the plain network, and the errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import seeded_weights
from adain.models import ops
from adain.models.adain import weights
from adain.errors import AdainError, WeightsError
from adain.inference.stylizer import Stylizer, StyleFeatures
from adain.models.adain.architecture import Variant
from adain.models.adain.codes import StyleCode
from adain.models.adain.network import Decoder
from seeded_variants import VARIANTS, save_variant, variant_model


@pytest.mark.parametrize("name", list(VARIANTS))
def test_state_dict_round_trip_and_shapes(name):
  model = variant_model(name)
  assert model.variant == VARIANTS[name] and model.variant.name == name
  sd = weights.decoder_state_dict(model)
  want = seeded_weights.variant_decoder_state_dict(model.variant.fusion, model.variant.decoder_norm)
  assert sorted(sd) == sorted(want)
  for k in want:
    np.testing.assert_array_equal(sd[k], want[k], err_msg=k)
  assert model.decoder.convs[0].kernel.shape == (3, 3, 1024 if name == "concat" else 512, 256)
  assert len(model.decoder.norms or ()) == (8 if name.endswith("decoder") else 0)
  assert weights.variant_of(sd) == VARIANTS[name]


@pytest.mark.slow  # the batch-norm decoder op by op, unjitted
def test_batch_norm_trains_on_the_batch_and_infers_with_running_averages():
  decoder = Decoder(Variant(decoder_norm="batch"), rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(1), (3, 4, 5, 512)) + 2.0
  norm = decoder.norms[0]
  norm.mean[...] = jnp.full((256,), 0.3)
  norm.var[...] = jnp.full((256,), 4.0)
  eval_all, eval_one = decoder(x), decoder(x[:1])
  np.testing.assert_allclose(eval_all[:1], eval_one, atol=1e-5)  # no dependence on the batch
  y = decoder.convs[0](x)
  expected = (y - 0.3) / jnp.sqrt(4.0 + ops.EPS) * norm.scale[...] + norm.bias[...]
  np.testing.assert_allclose(norm(y), expected, rtol=1e-5, atol=1e-5)
  # Training: batch statistics, and running averages moved by torch's momentum 0.1.
  train_one = decoder(x[:1], train=True)
  assert not np.allclose(train_one, eval_one, atol=1e-3)
  batch_mean = jnp.mean(y[:1], axis=(0, 1, 2))
  np.testing.assert_allclose(norm.mean[...], 0.9 * 0.3 + 0.1 * batch_mean, rtol=1e-5, atol=1e-6)
  n = 4 * 5
  batch_var = jnp.var(y[:1], axis=(0, 1, 2)) * n / (n - 1)
  np.testing.assert_allclose(norm.var[...], 0.9 * 4.0 + 0.1 * batch_var, rtol=1e-4)


def test_resize_nearest_is_torch_interpolate():
  x = jnp.arange(2 * 5 * 7 * 1, dtype=jnp.float32).reshape(2, 5, 7, 1)
  out = ops.resize_nearest(x, (3, 11))
  rows = [int(np.floor(i * np.float32(5 / 3))) for i in range(3)]
  cols = [min(int(np.floor(j * np.float32(7 / 11))), 6) for j in range(11)]
  np.testing.assert_array_equal(out, x[:, rows][:, :, cols])
  # Valid parts of padded arrays resize as the arrays alone.
  padded = jnp.zeros((2, 8, 9, 1)).at[:, :5, :7].set(x)
  got = ops.resize_nearest(padded, (6, 16), jnp.array([3, 11]), jnp.array([5, 7]))
  np.testing.assert_array_equal(got[:, :3, :11], out)


@pytest.mark.slow  # compiles each variant twice (bucketed and plain)
@pytest.mark.parametrize("name", ["concat", "in_decoder", "bn_decoder"])
def test_bucketed_stylizer_equals_the_plain_network(name):
  """Size buckets pad images; instance norm statistics and the concat resize see only the valid
  part, so each output is the network's on the image alone."""
  model = variant_model(name)
  rng = np.random.default_rng(0)
  content = rng.uniform(0, 1, (37, 45, 3)).astype(np.float32)
  style = rng.uniform(0, 1, (29, 51, 3)).astype(np.float32)
  stylizer = Stylizer(model)
  code = stylizer.encode_style(style)
  assert isinstance(code, StyleFeatures) == (name == "concat")
  got = stylizer.generate(content, code)
  c = model.encode_content(jnp.asarray(content)[None])
  if name == "concat":
    want = model.generate_concat(c, model.encode_content(jnp.asarray(style)[None]))
  else:
    want = model.generate(c, model.encode_style(jnp.asarray(style)[None]))
  np.testing.assert_allclose(got, np.asarray(want)[0, :37, :45], atol=1e-4)


def test_concat_needs_the_style_image(tmp_path):
  stylizer = Stylizer(variant_model("concat"))
  code_path = tmp_path / "code.npz"
  Stylizer(variant_model("adain")).encode_style(np.full((32, 32, 3), 0.5, np.float32)).save(code_path)
  with pytest.raises(AdainError, match=r"code\.npz: a style code cannot drive .*needs the style image"):
    stylizer.load_style_code(code_path)
  features = stylizer.encode_style(np.full((32, 32, 3), 0.5, np.float32))
  with pytest.raises(AdainError, match="alpha 1 only"):
    stylizer.generate(np.full((32, 32, 3), 0.5, np.float32), features, alpha=0.5)
  with pytest.raises(AdainError, match="stylizes whole images"):
    stylizer.generate(np.full((32, 32, 3), 0.5, np.float32), features, tile=16)
  with pytest.raises(AdainError, match="needs the style image"):
    variant_model("concat").generate(jnp.zeros((1, 4, 4, 512)),
                                     StyleCode(jnp.zeros((1, 512)), jnp.ones((1, 512))))


def test_decoder_files_of_another_variant_or_shape(tmp_path):
  path = save_variant(tmp_path / "bn.npz", "bn_decoder")
  sd, meta = weights.load_native(path, "decoder")
  assert (meta["fusion"], meta["decoder_norm"]) == ("adain", "batch") and len(sd) == 50
  # A file whose arrays are not of the variant it records.
  weights.save_native(tmp_path / "liar.npz", seeded_weights.decoder_state_dict(), "decoder",
                      fusion="concat", decoder_norm="none")
  with pytest.raises(WeightsError, match=r"liar\.npz: not an AdaIN decoder of variant 'concat': 1\.weight has shape "
                     r"\(256, 512, 3, 3\), expected \(256, 1024, 3, 3\)"):
    weights.load_weights(tmp_path / "liar.npz", "decoder")
  weights.save_native(tmp_path / "odd.npz", seeded_weights.decoder_state_dict(), "decoder",
                      fusion="sum", decoder_norm="none")
  with pytest.raises(WeightsError, match=r"odd\.npz: unknown model variant: fusion 'sum'"):
    weights.load_weights(tmp_path / "odd.npz", "decoder")
  partial = seeded_weights.variant_decoder_state_dict("adain", "instance")
  del partial["norm14.bias"]
  with pytest.raises(WeightsError, match="not an AdaIN decoder of variant 'in_decoder': missing 1 tensor"):
    weights.model_from_state_dicts(seeded_weights.vgg_state_dict(), partial)


@pytest.mark.parametrize("name", ["concat", "bn_decoder"])
def test_converted_copy_of_a_variant_decoder_is_reused(name, tmp_path):
  source = save_variant(tmp_path / "decoder.pth", name)  # native content under a .pth name
  first = weights.load_weights(source, "decoder")
  cached = weights.native_path(source)
  sd, meta = weights.load_native(cached, "decoder")  # the copy records its variant
  assert weights.variant_of(sd) == VARIANTS[name] and meta["source"]
  before = cached.stat().st_mtime_ns
  again = weights.load_weights(source, "decoder")
  assert cached.stat().st_mtime_ns == before  # read from the copy, not converted again
  assert all(np.array_equal(first[k], again[k]) for k in first)
