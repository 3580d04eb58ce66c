"""adain.augment: each augmented image is the Stylizer's for what was drawn, untouched images
come back bit for bit, keys repeat, 4 devices equal 1, the gaussian draws have the bank's
moments, banks from python -m adain.encode_style --style-dir, and the host routes (tf.data,
Grain)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import write_image

from adain.augment import StyleAugment, fit_gaussian
from adain.augment.style_augment import flatten_codes
from adain.commands import encode_style
from adain.errors import AdainError
from adain.inference.stylizer import Stylizer
from adain.media import images
from adain.models.adain.codes import StyleCode
from adain.models.microast.codes import MicroASTCode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module", params=["adain", "microast"])
def stylizer(request, weights, microast_weights):
  if request.param == "microast":
    return Stylizer.from_files(model="microast", weights=microast_weights)
  return Stylizer.from_files(*weights)


@pytest.fixture(scope="module")
def style_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp("styles")
  for i, (h, w) in enumerate([(48, 40), (36, 52), (64, 64), (40, 44)]):
    write_image(d / f"style{i}.png", h, w, seed=10 + i)
  return d


@pytest.fixture(scope="module")
def bank(stylizer, style_dir):
  return stylizer.concat_codes([stylizer.encode_style(images.load_image(p))
                                for p in sorted(style_dir.glob("*.png"))])


def _batch(n=6, h=40, w=56, seed=0):
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w]
  base = np.stack([xx / w, yy / h, (xx + yy) / (h + w)], -1)
  return np.clip(base + 0.2 * rng.standard_normal((n, h, w, 3)), 0, 1).astype(np.float32)


@pytest.mark.parametrize("options", [dict(), dict(mix=0.7), dict(sampling="gaussian"),
                                     dict(alpha=(1.0, 1.0))])
def test_each_image_is_the_stylizers(stylizer, bank, options):
  aug = StyleAugment(stylizer, bank, p=0.5, **options)
  x = _batch()
  key = jax.random.key(3)
  draw = aug.sample(key, len(x))
  out = np.asarray(aug.apply(draw, x))
  np.testing.assert_array_equal(out, np.asarray(aug(key, x)))  # __call__ = apply(sample)
  applied = np.asarray(draw.applied)
  assert 0 < applied.sum() < len(x)  # this key stylizes some and keeps some
  lo, hi = aug.alpha
  assert np.all((lo <= np.asarray(draw.alpha)) & (np.asarray(draw.alpha) <= hi))
  for i in range(len(x)):
    if applied[i]:
      want = stylizer.generate(x[i], draw.code[i:i + 1], alpha=float(draw.alpha[i]))
      np.testing.assert_allclose(out[i], np.clip(want, 0, 1), atol=1e-5, err_msg=str(i))
    else:
      np.testing.assert_array_equal(out[i], x[i])  # bit for bit


def test_draws_come_from_the_bank(stylizer, bank):
  fields = lambda c: np.concatenate([np.asarray(a) for a in jax.tree.leaves(c)], 1)  # noqa: E731
  rows = fields(bank)
  drawn = fields(StyleAugment(stylizer, bank).sample(jax.random.key(0), 64).code)
  assert all(np.any(np.all(rows == d, axis=1)) for d in drawn)  # each draw is a bank row
  assert len({tuple(d) for d in drawn}) == len(rows)  # 64 draws reach all 4 codes
  mixed = fields(StyleAugment(stylizer, bank, mix=1.0).sample(jax.random.key(0), 16).code)
  assert not any(np.any(np.all(rows == d, axis=1)) for d in mixed)  # blends, not rows
  lo, hi = rows.min(0), rows.max(0)
  assert np.all((mixed >= lo - 1e-6) & (mixed <= hi + 1e-6))  # between bank codes


def test_p0_identity_and_keys(stylizer, bank):
  x = _batch()
  np.testing.assert_array_equal(np.asarray(StyleAugment(stylizer, bank, p=0.0)(jax.random.key(1), x)), x)
  aug = StyleAugment(stylizer, bank, p=1.0)
  a, b = (np.asarray(aug(jax.random.key(1), x)) for _ in range(2))
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, np.asarray(aug(jax.random.key(2), x)))
  assert not np.array_equal(a, x)


def test_inside_a_users_jitted_step(stylizer, bank):
  """Traced inside a jitted function, closed over or passed in, and differentiable through."""
  aug = StyleAugment(stylizer, bank, p=0.5)
  x = jnp.asarray(_batch())

  @jax.jit
  def step(w, key, x):
    return jax.grad(lambda w: jnp.mean((aug(key, x) * w) ** 2))(w)

  @jax.jit
  def passed(aug, key, x):
    return aug(key, x)

  key = jax.random.key(5)
  np.testing.assert_allclose(step(2.0, key, x), 4 * np.mean(np.asarray(aug(key, x)) ** 2), rtol=1e-5)
  inside = np.asarray(passed(aug, key, x))  # one program: XLA may round differently (1e-6)
  np.testing.assert_allclose(inside, np.asarray(aug(key, x)), atol=1e-5)
  kept = ~np.asarray(aug.sample(key, len(x)).applied)
  assert kept.any()
  np.testing.assert_array_equal(inside[kept], np.asarray(x)[kept])  # still bit for bit


def test_four_devices_give_what_one_does(stylizer, bank, tmp_path, weights, microast_weights):
  """The batch sharded over 4 simulated devices (NamedSharding) in a fresh process."""
  x = _batch(n=8)
  np.save(tmp_path / "x.npy", x)
  stylizer_args = (f"model='microast', weights={str(microast_weights)!r}"
                   if stylizer.network == "microast" else f"{str(weights[0])!r}, {str(weights[1])!r}")
  code = textwrap.dedent(f"""
      import jax, numpy as np
      from jax.sharding import NamedSharding, PartitionSpec as P
      from adain.augment import StyleAugment
      from adain.inference.stylizer import Stylizer
      from adain.models import load_code
      assert jax.device_count() == 4
      s = Stylizer.from_files({stylizer_args})
      aug = StyleAugment(s, {str(tmp_path / "bank.npz")!r}, p=0.5, mix=0.5)
      mesh = jax.make_mesh((4,), ("data",))
      x = jax.device_put(np.load({str(tmp_path / "x.npy")!r}), NamedSharding(mesh, P("data")))
      out = jax.jit(aug)(jax.random.key(7), x)
      assert len(out.sharding.device_set) == 4, out.sharding
      np.save({str(tmp_path / "four.npy")!r}, np.asarray(out))
      """)
  bank.save(tmp_path / "bank.npz")
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)
  one = np.asarray(StyleAugment(stylizer, bank, p=0.5, mix=0.5)(jax.random.key(7), x))
  np.testing.assert_allclose(np.load(tmp_path / "four.npy"), one, atol=1e-5)


def _synthetic_bank(code_type, n, rng):
  """n codes from a known correlated distribution: plain fields normal, stds log-normal."""
  fields = [f for f in code_type.__dataclass_fields__]
  d = 64 * len(fields) if code_type is MicroASTCode else 1024
  latent = rng.standard_normal((n, 6)) @ rng.standard_normal((6, d)) * 0.15
  z = latent + 0.1 * rng.standard_normal((n, d)) + rng.uniform(-1, 1, d)
  parts = np.split(z, len(fields), axis=1)
  return code_type(*(np.exp(p) if f in code_type.POSITIVE else p for f, p in zip(fields, parts)))


@pytest.mark.parametrize("code_type", [StyleCode, MicroASTCode])
def test_gaussian_draws_have_the_banks_mean_and_covariance(code_type):
  """Fixed seeds: 20000 draws against a 4000-code bank, along 200 random directions (a
  projection's variance is u^T C u) and entry by entry (correlations)."""
  rng = np.random.default_rng(0)
  bank = _synthetic_bank(code_type, 4000, rng)
  x, positive = flatten_codes(bank)
  g = fit_gaussian(bank)
  drawn = np.asarray(g.draw(jax.random.key(0), 20000), np.float64)
  assert np.all(drawn[:, positive] > 0)  # stds stay positive
  m, c = x.mean(0), np.cov(x, rowvar=False)
  u = rng.standard_normal((x.shape[1], 200))
  u /= np.linalg.norm(u, axis=0)
  var = np.einsum("di,de,ei->i", u, c, u)
  z_mean = (drawn.mean(0) - m) @ u / np.sqrt(var / len(drawn))
  assert np.max(np.abs(z_mean)) < 5  # each projected mean within 5 standard errors
  np.testing.assert_allclose(np.var(drawn @ u, axis=0), var, rtol=0.06)
  corr = lambda a: np.corrcoef(a, rowvar=False)  # noqa: E731
  assert np.max(np.abs(corr(drawn) - corr(x))) < 0.06
  assert np.abs(corr(x)[~np.eye(len(c), dtype=bool)]).max() > 0.5  # the bank's entries do correlate


def test_gaussian_of_a_small_bank(stylizer, bank):
  """Four codes: draws are finite codes with positive stds, off the bank's rows."""
  aug = StyleAugment(stylizer, bank, p=1.0, sampling="gaussian")
  code = aug.sample(jax.random.key(0), 32).code
  x, positive = flatten_codes(code)
  assert np.all(np.isfinite(x)) and np.all(x[:, positive] > 0)
  out = np.asarray(aug(jax.random.key(0), _batch()))
  assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 1


def test_bank_file_from_style_dir(stylizer, bank, style_dir, weights, microast_weights, tmp_path, capsys):
  flags = (["--model", "microast", "--weights", str(microast_weights)] if stylizer.network == "microast"
           else ["--vgg", str(weights[0])])
  d = tmp_path / "styles"
  d.mkdir()
  for p in sorted(style_dir.glob("*.png")):
    (d / p.name).write_bytes(p.read_bytes())
  (d / "broken.png").write_bytes(b"not an image")
  out = tmp_path / "bank.npz"
  assert encode_style.main(["--style-dir", str(d), "--output", str(out), "--style-size", "0", *flags]) == 1
  err = capsys.readouterr().err
  assert err.count("broken.png") == 1 and "Traceback" not in err
  assert "4 style codes" in err and "1 failed" in err
  from_file = StyleAugment(stylizer, str(out), p=1.0)
  for a, b in zip(jax.tree.leaves(from_file.bank), jax.tree.leaves(bank)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)  # the rows in name order
  x = _batch()
  np.testing.assert_array_equal(np.asarray(from_file(jax.random.key(0), x)),
                                np.asarray(StyleAugment(stylizer, bank, p=1.0)(jax.random.key(0), x)))
  other = "adain" if stylizer.network == "microast" else "microast"
  with pytest.raises(AdainError, match=f"style code of the {stylizer.network} model, not of {other}"):
    StyleAugment(_other_stylizer(other, weights, microast_weights), str(out))


def _other_stylizer(model, weights, microast_weights):
  if model == "microast":
    return Stylizer.from_files(model="microast", weights=microast_weights)
  return Stylizer.from_files(*weights)


def test_refusals(stylizer, bank):
  with pytest.raises(AdainError, match="0 <= p <= 1"):
    StyleAugment(stylizer, bank, p=1.5)
  with pytest.raises(AdainError, match="alpha"):
    StyleAugment(stylizer, bank, alpha=(0.8, 0.2))
  with pytest.raises(AdainError, match="sampling must be one of"):
    StyleAugment(stylizer, bank, sampling="uniform")
  with pytest.raises(AdainError, match="mix blends two bank codes"):
    StyleAugment(stylizer, bank, sampling="gaussian", mix=0.5)
  with pytest.raises(AdainError, match="styles must be a bank file or codes"):
    StyleAugment(stylizer, np.zeros((2, 512)))
  with pytest.raises(AdainError, match="both sides must be at least"):
    StyleAugment(stylizer, bank)(jax.random.key(0), np.zeros((2, 4, 4, 3), np.float32))


def test_tf_data_route(stylizer, bank):
  import tensorflow as tf

  from adain.augment.host import batch_key, tf_data

  aug = StyleAugment(stylizer, bank, p=0.5)
  x = _batch(n=8)
  labels = np.arange(8)
  ds = tf_data(tf.data.Dataset.from_tensor_slices({"image": x, "label": labels}).batch(4), aug,
               seed=9, image_key="image")
  got = list(ds.as_numpy_iterator())
  assert [list(b["label"]) for b in got] == [[0, 1, 2, 3], [4, 5, 6, 7]]
  for i, b in enumerate(got):
    np.testing.assert_array_equal(b["image"], np.asarray(aug(batch_key(9, i), x[4 * i:4 * i + 4])))
  again = list(ds.as_numpy_iterator())
  np.testing.assert_array_equal(again[1]["image"], got[1]["image"])


def test_grain_route(stylizer, bank):
  import grain

  from adain.augment.grain_map import StyleAugmentMap, key_of

  aug = StyleAugment(stylizer, bank, p=1.0)
  x = _batch(n=4)
  ds = grain.MapDataset.source(list(x)).seed(3).random_map(StyleAugmentMap(aug)).batch(2)
  got = np.concatenate(list(ds))
  assert got.shape == x.shape and not np.array_equal(got, x)
  np.testing.assert_array_equal(np.concatenate(list(ds)), got)  # seeded: repeats
  # Element 0 is stylized with the key drawn from the generator Grain gives it.
  rng = np.random.Generator(np.random.Philox(key=0))  # stand-in generator: one draw makes the key
  mapped = StyleAugmentMap(aug).random_map(x[0], rng)
  want = np.asarray(aug(key_of(np.random.Generator(np.random.Philox(key=0))), x[:1]))[0]
  np.testing.assert_array_equal(mapped, want)


def test_bench_resnet50_is_torchvisions_and_prints(capsys):
  """The reference the augmentation is measured against: torchvision's ResNet-50 parameter
  count (25,557,032), and the bench's JSON lines at a toy size."""
  import json

  from flax import nnx

  from adain.augment import bench

  assert sum(x.size for x in jax.tree.leaves(nnx.state(bench.ResNet50(), nnx.Param))) == 25_557_032
  assert bench.main(["--batch", "2", "--size", "32", "--models", "microast", "--repeats", "1"]) == 0
  rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
  assert [r["bench"] for r in rows] == ["augment", "resnet50_train_step", "augment"]
  assert rows[2]["model"] == "microast" and rows[2]["images_per_s"] > 0
  assert rows[2]["of_resnet50_step"] == round(rows[2]["ms_per_batch"] / rows[1]["ms_per_step"], 3)
