"""Shared fixtures: seeded model weights as native files, and small images on disk."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from PIL import Image

import seeded_weights
from adain.weights import save_native

# The suite never touches the user's weights cache or compilation cache.
os.environ["ADAIN_HOME"] = tempfile.mkdtemp(prefix="adain-home-")


@pytest.fixture(scope="session")
def weights(tmp_path_factory):
  """(vgg.npz, decoder.npz) made from a seed: outputs that vary with content and style."""
  d = tmp_path_factory.mktemp("weights")
  save_native(d / "vgg.npz", seeded_weights.vgg_state_dict(), "vgg")
  save_native(d / "decoder.npz", seeded_weights.decoder_state_dict(), "decoder")
  return d / "vgg.npz", d / "decoder.npz"


def write_image(path, h, w, seed=0):
  """A smooth random RGB image (gradients plus noise), saved losslessly."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w]
  base = np.stack([xx / w, yy / h, (xx + yy) / (h + w)], -1)
  img = np.clip(base + 0.2 * rng.standard_normal((h, w, 3)), 0, 1)
  Image.fromarray((img * 255).astype(np.uint8)).save(path)
  return path
