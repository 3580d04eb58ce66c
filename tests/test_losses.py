"""adain.models.losses against pytorch-AdaIN's losses (tools/make_train_fixtures.py, losses.npz)."""

from __future__ import annotations

import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np

from adain.models import losses
from adain.models.adain.architecture import FEATURES

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "train", "losses.npz")


def test_losses_match_pytorch_reference():
  z = np.load(FIXTURE)
  out = {n: jnp.asarray(z[f"out_{n}"]) for n in FEATURES}
  style = {n: jnp.asarray(z[f"style_{n}"]) for n in FEATURES}
  np.testing.assert_allclose(losses.content_loss(out["relu4_1"], jnp.asarray(z["target"])),
                             z["content_loss"], rtol=1e-6)
  np.testing.assert_allclose(losses.style_loss(out, style), z["style_loss"], rtol=1e-5)


def test_style_loss_layers_and_zero():
  z = np.load(FIXTURE)
  out = {n: jnp.asarray(z[f"out_{n}"]) for n in FEATURES}
  style = {n: jnp.asarray(z[f"style_{n}"]) for n in FEATURES}
  assert float(losses.style_loss(out, out)) == 0.0
  per_layer = [float(losses.style_loss(out, style, (n,))) for n in FEATURES]
  np.testing.assert_allclose(sum(per_layer), z["style_loss"], rtol=1e-5)


def test_style_signal_contrastive_loss_is_microasts_loop():
  """MicroAST's double loop over the batch (tools/make_train_fixtures.py's microast_forward),
  in numpy; and a batch whose outputs carry their own style's signals scores 0."""
  rng = np.random.default_rng(0)
  out, sty = ([rng.normal(size=(3, 64)).astype(np.float32) for _ in range(8)] for _ in range(2))

  def d(i, j):
    return sum(np.mean((o[i] - s[j]) ** 2) for o, s in zip(out, sty))

  want = sum(d(i, i) / sum(d(i, j) for j in range(3) if j != i) for i in range(3))
  got = losses.style_signal_contrastive_loss([jnp.asarray(a) for a in out],
                                             [jnp.asarray(a) for a in sty])
  np.testing.assert_allclose(got, want, rtol=1e-6)
  assert float(losses.style_signal_contrastive_loss(sty, sty)) == 0.0


def test_adain_does_not_import_training_or_extra_dependencies():
  # (optax is not checked: flax.nnx itself imports it.) PyAV, Gradio, onnx load only where used.
  code = ("import sys, adain, adain.models.losses, adain.inference.stylizer, adain.pipelines.video, adain.stylize, "
          "adain.stylize_dataset, adain.app, adain.export; "
          "bad = {'tensorflow', 'orbax', 'train', 'av', 'gradio', 'onnx', 'onnxruntime'} & "
          "{m.split('.')[0] for m in sys.modules}; assert not bad, bad")
  subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(FIXTURE))
