"""Seeded stand-ins for pytorch-AdaIN's vgg_normalised.pth and decoder.pth (numpy only).

The real files are ~28 MB each, too big to commit, so the parity fixtures are made with weights
that both tools/make_parity_fixtures.py (PyTorch) and the tests (JAX) rebuild from a seed. This
module must not import jax or torch: each side imports it from its own virtualenv.

He-scaled normal kernels keep ReLU activations in a sane range through 19 convolutions; the
decoder's last layer is made zero-mean, scaled and biased so that its output spreads over [0, 1]
unclipped, and the uint8 comparisons test real values rather than 0s and 255s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# (nn.Sequential index, in channels, out channels, kernel size) of net.py's vgg, to relu5_4.
VGG_CONVS = (
    (0, 3, 3, 1), (2, 3, 64, 3), (5, 64, 64, 3), (9, 64, 128, 3), (12, 128, 128, 3),
    (16, 128, 256, 3), (19, 256, 256, 3), (22, 256, 256, 3), (25, 256, 256, 3),
    (29, 256, 512, 3), (32, 512, 512, 3), (35, 512, 512, 3), (38, 512, 512, 3),
    (42, 512, 512, 3), (45, 512, 512, 3), (48, 512, 512, 3), (51, 512, 512, 3),
)
VGG_USED = 10  # test.py keeps vgg[:31]: the first ten convolutions, through relu4_1.

# The same for net.py's decoder.
DECODER_CONVS = (
    (1, 512, 256, 3), (5, 256, 256, 3), (8, 256, 256, 3), (11, 256, 256, 3), (14, 256, 128, 3),
    (18, 128, 128, 3), (21, 128, 64, 3), (25, 64, 64, 3), (28, 64, 3, 3),
)

# Decoder output scale (relative to He init) and offset, tuned so the parity fixtures' stylizations
# span about 20 .. 190 of 255 with nothing clipped.
OUTPUT_GAIN = 0.7
OUTPUT_BIAS = 0.7


def _convs(table, seed: int) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(seed)
  sd = {}
  for idx, cin, cout, k in table:
    std = np.sqrt(2.0 / (cin * k * k))
    sd[f"{idx}.weight"] = (rng.standard_normal((cout, cin, k, k)) * std).astype(np.float32)
    sd[f"{idx}.bias"] = (rng.standard_normal(cout) * 0.05).astype(np.float32)
  return sd


def vgg_state_dict(seed: int = 0, full: bool = False) -> dict[str, np.ndarray]:
  """A vgg_normalised-shaped state dict (OIHW float32); ``full`` adds relu4_2 .. relu5_4."""
  return _convs(VGG_CONVS if full else VGG_CONVS[:VGG_USED], seed)


def decoder_state_dict(seed: int = 1) -> dict[str, np.ndarray]:
  """A decoder-shaped state dict (OIHW float32) whose output lies mostly in [0, 1]."""
  sd = _convs(DECODER_CONVS, seed)
  last = DECODER_CONVS[-1][0]
  w = sd[f"{last}.weight"]  # zero-mean per output channel: its ReLU inputs are all positive
  w = (w - w.mean(axis=(1, 2, 3), keepdims=True)) * OUTPUT_GAIN
  sd[f"{last}.weight"] = w.astype(np.float32)
  sd[f"{last}.bias"] = np.full(3, OUTPUT_BIAS, np.float32)
  return sd


def variant_decoder_state_dict(fusion: str = "adain", decoder_norm: str = "none",
                               seed: int = 2) -> dict[str, np.ndarray]:
  """A decoder of a Fig. 6 ablation (adain.models.adain.architecture.Variant): 1024 input channels for ``concat``,
  and norm{index}.{weight,bias[,running_mean,running_var]} after every conv but the last for
  ``batch`` / ``instance``, near identity (running variances near the activations' own)."""
  table = DECODER_CONVS
  if fusion == "concat":
    idx, cin, cout, k = table[0]
    table = ((idx, 2 * cin, cout, k),) + table[1:]
  sd = decoder_state_dict(seed)
  sd.update(_convs(table[:1], seed + 100))
  rng = np.random.default_rng(seed + 200)
  names = {"batch": ("weight", "bias", "running_mean", "running_var"),
           "instance": ("weight", "bias")}.get(decoder_norm, ())
  for idx, _, cout, _ in table[:-1]:
    values = {"weight": 1 + 0.1 * rng.standard_normal(cout), "bias": 0.1 * rng.standard_normal(cout),
              "running_mean": 0.1 * rng.standard_normal(cout),
              "running_var": rng.uniform(0.5, 2.0, cout)}
    sd.update({f"norm{idx}.{n}": values[n].astype(np.float32) for n in names})
  return sd


def save(folder) -> tuple[Path, Path]:
  """(vgg.npz, decoder.npz) of the seeded weights, written as native files into ``folder``."""
  from adain.models.adain.weights import save_native  # imports jax: only the JAX side saves

  vgg, decoder = Path(folder) / "vgg.npz", Path(folder) / "decoder.npz"
  save_native(vgg, vgg_state_dict(), "vgg")
  save_native(decoder, decoder_state_dict(), "decoder")
  return vgg, decoder


def checksum(*state_dicts: dict[str, np.ndarray]) -> np.ndarray:
  """Sum of |w| per state dict, stored with the fixtures to catch a changed recipe."""
  return np.array([sum(float(np.abs(v).sum(dtype=np.float64)) for v in sd.values())
                   for sd in state_dicts])
