"""Writes tests/fixtures/evaluate: images and the paper's losses PyTorch computes on them.

Run with the fixtures virtualenv (torch, numpy, pillow):

  .venv-fixtures/bin/python tools/make_evaluate_fixtures.py

For each decoder variant (the paper's, Enc-Concat-Dec, BatchNorm and InstanceNorm decoders,
with tests/seeded_weights.py's weights) and each content x style pair: the output, decoded as
pytorch-AdaIN's test.py (cropped top-left to the content's size) and clipped to [0, 1], and its
losses as pytorch-AdaIN's net.py computes them in training: content = MSE(relu4_1(output),
AdaIN(f(c), f(s))), style = sum over relu1_1..relu4_1 of MSE(means) + MSE(stds). The
``content`` rows take the content image itself as output. tests/test_evaluate.py checks
``python -m train.evaluate`` against them. The reference network is make_parity_fixtures.py's.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

import make_parity_fixtures as ref  # noqa: E402  (sets sys.path for seeded_weights too)
import seeded_weights  # noqa: E402

OUT = os.path.join(ref.ROOT, "tests", "fixtures", "evaluate")
# name -> (height, width, seed); none a multiple of 8 on both sides.
CONTENTS = {"c_wide": (44, 58, 21), "c_tall": (53, 39, 22)}
STYLES = {"s_square": (41, 41, 23), "s_wide": (36, 50, 24)}
VARIANTS = {"adain": ("adain", "none"), "concat": ("concat", "none"),
            "bn_decoder": ("adain", "batch"), "in_decoder": ("adain", "instance")}
UPSAMPLE_BEFORE = (5, 18, 25)  # net.py's decoder, as make_parity_fixtures.reference_modules


def variant_decoder(sd, fusion: str, norm: str):
  """net.py's decoder with a BatchNorm2d / affine InstanceNorm2d after every conv but the last
  (before its ReLU), and 1024 input channels for Enc-Concat-Dec; in eval mode."""
  import torch
  from torch import nn

  def tensor(key):
    return torch.from_numpy(sd[key])

  layers = []
  for idx, cin, cout, _ in seeded_weights.DECODER_CONVS:
    if idx in UPSAMPLE_BEFORE:
      layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
    conv = nn.Conv2d(2 * cin if fusion == "concat" and idx == 1 else cin, cout, (3, 3))
    conv.weight.data, conv.bias.data = tensor(f"{idx}.weight"), tensor(f"{idx}.bias")
    layers += [nn.ReflectionPad2d((1, 1, 1, 1)), conv]
    if cout == 3:
      continue
    if norm == "batch":
      bn = nn.BatchNorm2d(cout)
      bn.load_state_dict({"weight": tensor(f"norm{idx}.weight"), "bias": tensor(f"norm{idx}.bias"),
                          "running_mean": tensor(f"norm{idx}.running_mean"),
                          "running_var": tensor(f"norm{idx}.running_var"),
                          "num_batches_tracked": torch.tensor(1)})
      layers.append(bn)
    elif norm == "instance":
      inorm = nn.InstanceNorm2d(cout, affine=True)
      inorm.weight.data, inorm.bias.data = tensor(f"norm{idx}.weight"), tensor(f"norm{idx}.bias")
      layers.append(inorm)
    layers.append(nn.ReLU())
  return nn.Sequential(*layers).eval()


def main() -> None:
  import torch
  import torch.nn.functional as F

  imgs = {}
  for kind, table in (("content", CONTENTS), ("style", STYLES)):
    os.makedirs(os.path.join(OUT, kind), exist_ok=True)
    for name, (h, w, seed) in table.items():
      path = os.path.join(OUT, kind, f"{name}.png")
      Image.fromarray(ref.synthetic_image(h, w, seed)).save(path)
      with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), np.float32) / 255.0
      imgs[name] = torch.from_numpy(arr.transpose(2, 0, 1).copy())[None]

  vgg_sd = seeded_weights.vgg_state_dict(full=True)
  vgg, _, _ = ref.reference_modules(vgg_sd, seeded_weights.decoder_state_dict())
  ex = {"weights_checksum": seeded_weights.checksum(
      seeded_weights.vgg_state_dict(), *(seeded_weights.variant_decoder_state_dict(*v)
                                         for v in VARIANTS.values()))}
  shape = (len(CONTENTS), len(STYLES))
  with torch.no_grad():
    decoders = {name: variant_decoder(seeded_weights.variant_decoder_state_dict(*v), *v)
                for name, v in VARIANTS.items()}
    for row in (*VARIANTS, "content"):
      ex[f"{row}_content_loss"], ex[f"{row}_style_loss"] = np.zeros(shape), np.zeros(shape)
    style_feats = {s: ref.encode_with_intermediate(vgg, imgs[s]) for s in STYLES}
    for i, (c, (h, w, _)) in enumerate(CONTENTS.items()):
      c_f = vgg(imgs[c])
      for j, s in enumerate(STYLES):
        s_feats = style_feats[s]
        s_f = s_feats[-1]
        t = ref.adaptive_instance_normalization(c_f, s_f)
        for name, decoder in decoders.items():
          if VARIANTS[name][0] == "concat":
            decoded = decoder(torch.cat([c_f, F.interpolate(s_f, size=c_f.shape[2:],
                                                            mode="nearest")], 1))
          else:
            decoded = decoder(t)
          out = decoded[:, :, :h, :w].clamp(0, 1)
          ex[f"{name}_content_loss"][i, j], ex[f"{name}_style_loss"][i, j] = (
              loss.item() for loss in ref.paper_losses(vgg, out, t, s_feats))
        ex["content_content_loss"][i, j], ex["content_style_loss"][i, j] = (
            loss.item() for loss in ref.paper_losses(vgg, imgs[c], t, s_feats))
  np.savez(os.path.join(OUT, "expected.npz"), **ex)
  for k, v in ex.items():
    print(f"{k:26s} {np.array2string(np.asarray(v).ravel(), precision=4)}")


if __name__ == "__main__":
  main()
