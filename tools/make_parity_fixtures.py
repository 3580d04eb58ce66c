"""Writes tests/fixtures/parity: tiny images and what pytorch-AdaIN computes from them.

Run with the fixtures virtualenv (torch, numpy, pillow):

  .venv-fixtures/bin/python tools/make_parity_fixtures.py

The reference is re-implemented here in PyTorch exactly as pytorch-AdaIN's net.py, function.py
and test.py, with weights from tests/seeded_weights.py (the tests rebuild the same arrays), so
tests/test_parity.py can check our JAX model against it without torch or the 28 MB weights.
Expected arrays are stored NHWC / HWC float32 (uint8 for saved images) in expected.npz.

It also writes the seeded weights with torch.save in both layouts (zip and legacy) to a temp dir
and, where adain.weights.torch_pickle.read_torch_state_dict exists, checks that it reads them back
exactly. That reader needs jax (via the adain package), which this virtualenv lacks, so the check
runs this script again under the main .venv with ``--check-pth DIR`` (that mode needs no torch).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import seeded_weights  # noqa: E402  (needs the path set above)

OUT = os.path.join(ROOT, "tests", "fixtures", "parity")
MAIN_PYTHON = os.path.join(ROOT, ".venv", "bin", "python")

# name -> (height, width, seed). content_b and style_c are not multiples of 8; style_a and style_b
# share a size because test.py's interpolation stacks the styles into one batch.
IMAGES = {
    "content_a": (40, 56, 10),
    "content_b": (37, 45, 11),
    "style_a": (32, 40, 12),
    "style_b": (32, 40, 13),
    "style_c": (45, 36, 14),
}
ALPHA = 0.6
INTERPOLATION_WEIGHTS = (1, 3)


def synthetic_image(h: int, w: int, seed: int) -> np.ndarray:
  """A smooth, colourful uint8 HWC image with some texture: sums of random plane waves + noise."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:h, 0:w].astype(np.float64)
  img = np.zeros((h, w, 3))
  for c in range(3):
    for _ in range(4):
      fy, fx = rng.uniform(-0.4, 0.4, 2)
      img[..., c] += rng.uniform(0.3, 1.0) * np.sin(fy * y + fx * x + rng.uniform(0, 2 * np.pi))
  img = 0.5 + 0.22 * img / 2.0 + rng.normal(0, 0.04, img.shape)
  return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- reference (pytorch-AdaIN)


def reference_modules(vgg_sd, decoder_sd):
  """net.py's ``vgg`` (53 modules, loaded, then cut to vgg[:31] as test.py does) and ``decoder``."""
  import torch
  from torch import nn

  pool_at = {7, 14, 27, 40}  # net.py's MaxPool2d indices, each right after a ReLU
  layers = []
  for idx, cin, cout, k in seeded_weights.VGG_CONVS:
    if k == 3:
      layers.append(nn.ReflectionPad2d((1, 1, 1, 1)))
    layers.append(nn.Conv2d(cin, cout, (k, k)))
    if idx:
      layers.append(nn.ReLU())
    if len(layers) in pool_at:
      layers.append(nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True))
  vgg = nn.Sequential(*layers)
  assert len(vgg) == 53, len(vgg)

  upsample_before = {5, 18, 25}
  layers = []
  for idx, cin, cout, _ in seeded_weights.DECODER_CONVS:
    if idx in upsample_before:
      layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
    layers.append(nn.ReflectionPad2d((1, 1, 1, 1)))
    layers.append(nn.Conv2d(cin, cout, (3, 3)))
    if cout != 3:
      layers.append(nn.ReLU())
  decoder = nn.Sequential(*layers)

  for module, sd in ((vgg, vgg_sd), (decoder, decoder_sd)):
    for key in sd:  # check each table index really names a conv of the right shape
      assert isinstance(module[int(key.split(".")[0])], nn.Conv2d), key
    module.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    module.eval()
  return nn.Sequential(*list(vgg.children())[:31]), vgg, decoder


def calc_mean_std(feat, eps=1e-5):
  n, c = feat.size()[:2]
  var = feat.view(n, c, -1).var(dim=2) + eps
  return feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def adaptive_instance_normalization(content_feat, style_feat):
  size = content_feat.size()
  style_mean, style_std = calc_mean_std(style_feat)
  content_mean, content_std = calc_mean_std(content_feat)
  normalized = (content_feat - content_mean.expand(size)) / content_std.expand(size)
  return normalized * style_std.expand(size) + style_mean.expand(size)


ENC_SLICES = ((0, 4), (4, 11), (11, 18), (18, 31))  # net.py's enc_1 .. enc_4: to relu1_1 .. relu4_1


def encode_with_intermediate(vgg, x):
  """net.py's Net.encode_with_intermediate: relu1_1 .. relu4_1 of x."""
  feats = []
  for lo, hi in ENC_SLICES:
    x = vgg[lo:hi](x)
    feats.append(x)
  return feats


def style_loss(inp, target):
  """net.py's Net.calc_style_loss: MSE of the channel means plus MSE of the channel stds."""
  import torch.nn.functional as F

  (i_mean, i_std), (t_mean, t_std) = calc_mean_std(inp), calc_mean_std(target)
  return F.mse_loss(i_mean, t_mean) + F.mse_loss(i_std, t_std)


def paper_losses(vgg, output, target, style_feats):
  """net.py's losses of an output: (MSE of its relu4_1 against the AdaIN target t, the sum of
  style_loss over relu1_1 .. relu4_1 against the style's features)."""
  import torch.nn.functional as F

  out_feats = encode_with_intermediate(vgg, output)
  loss_s = style_loss(out_feats[0], style_feats[0])
  for o, s in zip(out_feats[1:], style_feats[1:]):
    loss_s = loss_s + style_loss(o, s)
  return F.mse_loss(out_feats[-1], target), loss_s


def reference_training(decoder_sd):
  """train.py's set-up on tests/seeded_weights.py's VGG: (frozen vgg[:31], decoder in training
  mode, Adam at lr 1e-4 over the decoder)."""
  import torch

  vgg, _, decoder = reference_modules(seeded_weights.vgg_state_dict(full=True), decoder_sd)
  decoder.train()
  for p in vgg.parameters():
    p.requires_grad = False
  return vgg, decoder, torch.optim.Adam(decoder.parameters(), lr=1e-4)


def net_forward(vgg, decoder, content, style):
  """net.py's Net.forward with alpha 1: (content loss, style loss) of decoding AdaIN(c, s)."""
  style_feats = encode_with_intermediate(vgg, style)
  t = adaptive_instance_normalization(encode_with_intermediate(vgg, content)[-1], style_feats[-1])
  return paper_losses(vgg, decoder(t), t, style_feats)


def _calc_feat_flatten_mean_std(feat):
  import torch

  assert feat.size()[0] == 3 and isinstance(feat, torch.FloatTensor)
  flat = feat.view(3, -1)
  return flat, flat.mean(dim=-1, keepdim=True), flat.std(dim=-1, keepdim=True)


def _mat_sqrt(x):
  import torch

  u, d, v = torch.svd(x)
  return torch.mm(torch.mm(u, d.pow(0.5).diag()), v.t())


def coral(source, target):
  import torch

  source_f, source_mean, source_std = _calc_feat_flatten_mean_std(source)
  source_norm = (source_f - source_mean.expand_as(source_f)) / source_std.expand_as(source_f)
  source_cov_eye = torch.mm(source_norm, source_norm.t()) + torch.eye(3)
  target_f, target_mean, target_std = _calc_feat_flatten_mean_std(target)
  target_norm = (target_f - target_mean.expand_as(target_f)) / target_std.expand_as(target_f)
  target_cov_eye = torch.mm(target_norm, target_norm.t()) + torch.eye(3)
  transfer = torch.mm(_mat_sqrt(target_cov_eye),
                      torch.mm(torch.inverse(_mat_sqrt(source_cov_eye)), source_norm))
  out = transfer * target_std.expand_as(source_norm) + target_mean.expand_as(source_norm)
  return out.view(source.size())


def style_transfer(vgg, decoder, content, style, alpha=1.0, interpolation_weights=None):
  import torch

  content_f = vgg(content)
  style_f = vgg(style)
  if interpolation_weights:
    _, c, h, w = content_f.size()
    feat = torch.zeros(1, c, h, w)
    base_feat = adaptive_instance_normalization(content_f, style_f)
    for i, wt in enumerate(interpolation_weights):
      feat = feat + wt * base_feat[i:i + 1]
    content_f = content_f[0:1]
  else:
    feat = adaptive_instance_normalization(content_f, style_f)
  feat = feat * alpha + content_f * (1 - alpha)
  return decoder(feat)


def saved_uint8(output_1chw) -> np.ndarray:
  """torchvision.utils.save_image's conversion of a one-image batch, as HWC uint8."""
  import torch

  return output_1chw[0].mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()


# ---------------------------------------------------------------- fixtures


def _nhwc(t) -> np.ndarray:
  return np.ascontiguousarray(t.detach().numpy().transpose(0, 2, 3, 1)).astype(np.float32)


def make_fixtures(vgg, full_vgg, decoder) -> dict[str, np.ndarray]:
  import torch

  imgs = {}
  for name in IMAGES:  # read back what was written, as test.py's ToTensor does
    with Image.open(os.path.join(OUT, f"{name}.png")) as im:
      arr = np.asarray(im.convert("RGB"), np.float32) / 255.0
    imgs[name] = torch.from_numpy(arr.transpose(2, 0, 1).copy())[None]

  ex = {}
  # Encoder taps, with net.py's Net split (enc_1 .. enc_4 = vgg[:4], [4:11], [11:18], [18:31]).
  x = imgs["content_b"]
  for tap, (lo, hi) in zip(("relu1_1", "relu2_1", "relu3_1", "relu4_1"),
                           ((0, 4), (4, 11), (11, 18), (18, 31))):
    x = full_vgg[lo:hi](x)
    ex[f"content_b_{tap}"] = _nhwc(x)
  assert torch.equal(x, vgg(imgs["content_b"])), "vgg[:31] is not the relu4_1 tap"

  # AdaIN and decoder floats, for each content (content_b's decoder output is 40x48, uncropped).
  for content, style in (("content_a", "style_c"), ("content_b", "style_a")):
    c_f = vgg(imgs[content])
    s_f = vgg(imgs[style])
    t = adaptive_instance_normalization(c_f, s_f)
    ex[f"{content}_relu4_1"] = _nhwc(c_f)
    ex[f"{style}_relu4_1"] = _nhwc(s_f)
    ex[f"{content}_{style}_adain"] = _nhwc(t)
    ex[f"{content}_{style}_decoded"] = _nhwc(decoder(t))

  # Whole stylizations as test.py saves them, cropped (top-left) to the content's size.
  def stylized(content, styles, **kw):
    h, w = IMAGES[content][:2]
    out = style_transfer(vgg, decoder, imgs[content].expand(len(styles), -1, -1, -1),
                         torch.cat([imgs[s] for s in styles]), **kw)
    return saved_uint8(out)[:h, :w]

  ex["stylized_a_c_alpha1"] = stylized("content_a", ["style_c"], alpha=1.0)
  ex["stylized_b_c_alpha1"] = stylized("content_b", ["style_c"], alpha=1.0)
  ex[f"stylized_a_c_alpha{ALPHA}"] = stylized("content_a", ["style_c"], alpha=ALPHA)
  weights = [w / sum(INTERPOLATION_WEIGHTS) for w in INTERPOLATION_WEIGHTS]
  ex["stylized_a_interp_ab"] = stylized("content_a", ["style_a", "style_b"],
                                        interpolation_weights=weights)

  # Colour preservation: style = coral(style, content) before style transfer.
  styled = coral(imgs["style_c"][0], imgs["content_b"][0])
  ex["coral_c_to_b"] = _nhwc(styled[None])[0]
  h, w = IMAGES["content_b"][:2]
  ex["stylized_b_coral_c"] = saved_uint8(style_transfer(vgg, decoder, imgs["content_b"],
                                                        styled[None]))[:h, :w]
  return ex


def check_pth_roundtrip(vgg_sd, decoder_sd) -> None:
  """torch.save the seeded weights in both layouts; check our reader, if present, reads them."""
  import torch

  with tempfile.TemporaryDirectory() as tmp:
    for name, sd in (("vgg", vgg_sd), ("decoder", decoder_sd)):
      tensors = {k: torch.from_numpy(v) for k, v in sd.items()}
      torch.save(tensors, os.path.join(tmp, f"{name}_zip.pth"))
      torch.save(tensors, os.path.join(tmp, f"{name}_legacy.pth"),
                 _use_new_zipfile_serialization=False)
    if not os.path.exists(MAIN_PYTHON):
      print(f"torch_pickle check skipped: no {MAIN_PYTHON}")
      return
    subprocess.run([MAIN_PYTHON, os.path.abspath(__file__), "--check-pth", tmp], check=True)


def read_back(tmp: str) -> None:
  """The ``--check-pth`` mode, under the main .venv: no torch here."""
  try:
    from adain.weights.torch_pickle import read_torch_state_dict
  except ImportError as e:
    print(f"torch_pickle check skipped: {e}")
    return
  want = {"vgg": seeded_weights.vgg_state_dict(full=True),
          "decoder": seeded_weights.decoder_state_dict()}
  for name, sd in want.items():
    for layout in ("zip", "legacy"):
      got = read_torch_state_dict(os.path.join(tmp, f"{name}_{layout}.pth"))
      assert sorted(got) == sorted(sd), (name, layout, sorted(set(got) ^ set(sd)))
      for k, v in sd.items():
        g = np.asarray(got[k])
        assert g.dtype == v.dtype and g.shape == v.shape and np.array_equal(g, v), (name, layout, k)
      print(f"torch_pickle reads {name}_{layout}.pth exactly ({len(sd)} tensors)")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--check-pth", metavar="DIR", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.check_pth:
    read_back(args.check_pth)
    return

  import torch

  torch.manual_seed(0)
  os.makedirs(OUT, exist_ok=True)
  for name, (h, w, seed) in IMAGES.items():
    Image.fromarray(synthetic_image(h, w, seed)).save(os.path.join(OUT, f"{name}.png"))
  vgg_sd = seeded_weights.vgg_state_dict(full=True)
  decoder_sd = seeded_weights.decoder_state_dict()
  vgg, full_vgg, decoder = reference_modules(vgg_sd, decoder_sd)
  with torch.no_grad():
    ex = make_fixtures(vgg, full_vgg, decoder)
  ex["weights_checksum"] = seeded_weights.checksum(seeded_weights.vgg_state_dict(), decoder_sd)
  np.savez_compressed(os.path.join(OUT, "expected.npz"), **ex)
  for k, v in ex.items():
    clipped = np.mean((v == 0) | (v == 255)) if v.dtype == np.uint8 else 0.0
    print(f"{k:32s} {str(v.shape):18s} {v.dtype} range [{v.min():.3g}, {v.max():.3g}]"
          + (f" clipped {clipped:.1%}" if v.dtype == np.uint8 else ""))
  check_pth_roundtrip(vgg_sd, decoder_sd)
  total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
  print(f"{OUT}: {total / 1024:.0f} KiB")


if __name__ == "__main__":
  main()
