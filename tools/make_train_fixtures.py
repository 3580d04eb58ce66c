"""Reference training losses from PyTorch, for tests/test_losses.py and tests/test_train_step.py.

Run with the fixtures venv (torch + numpy only): ``.venv-fixtures/bin/python
tools/make_train_fixtures.py``. It writes tests/fixtures/train/{losses,step}.npz:

* losses.npz: random relu1_1..relu4_1 features and an AdaIN target (NHWC) with pytorch-AdaIN's
  content and style losses of them (net.py's calc_mean_std, calc_content_loss, calc_style_loss).
* step.npz: four 32 px uint8 content and style images, and net.py's forward plus one step of
  train.py's Adam (lr 1e-4, decay step 0) on tests/seeded_weights.py's weights (too big to
  store: the tests rebuild them from the same seeds; a checksum catches a changed recipe).
"""

from __future__ import annotations

import os
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "tests"))
import seeded_weights  # noqa: E402  (numpy only, shared with the tests)

OUT = os.path.join(ROOT, "tests", "fixtures", "train")
SEED = 20170101


def main() -> None:
  import torch
  from torch import nn

  torch.use_deterministic_algorithms(True)

  def calc_mean_std(feat, eps=1e-5):  # pytorch-AdaIN function.py
    n, c = feat.size()[:2]
    feat_var = feat.view(n, c, -1).var(dim=2) + eps
    return feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), feat_var.sqrt().view(n, c, 1, 1)

  def adain(content_feat, style_feat):
    size = content_feat.size()
    s_mean, s_std = calc_mean_std(style_feat)
    c_mean, c_std = calc_mean_std(content_feat)
    normalized = (content_feat - c_mean.expand(size)) / c_std.expand(size)
    return normalized * s_std.expand(size) + s_mean.expand(size)

  mse = nn.MSELoss()

  def content_loss(inp, target):  # net.py Net.calc_content_loss
    return mse(inp, target)

  def style_loss(inp, target):  # net.py Net.calc_style_loss
    i_mean, i_std = calc_mean_std(inp)
    t_mean, t_std = calc_mean_std(target)
    return mse(i_mean, t_mean) + mse(i_std, t_std)

  def nchw(a):
    return torch.from_numpy(np.ascontiguousarray(np.transpose(a, (0, 3, 1, 2))))

  os.makedirs(OUT, exist_ok=True)
  rs = np.random.RandomState(SEED + 1)

  # Losses of random features (positive, as after a ReLU, with per-channel offsets).
  shapes = {"relu1_1": (2, 8, 8, 64), "relu2_1": (2, 4, 4, 128), "relu3_1": (2, 3, 3, 256),
            "relu4_1": (2, 2, 2, 512)}
  feats = {}
  for name, shape in shapes.items():
    for who in ("out", "style"):
      scale = rs.uniform(0.1, 3.0, (1, 1, 1, shape[-1]))
      feats[f"{who}_{name}"] = (rs.gamma(2.0, 1.0, shape) * scale).astype(np.float32)
  feats["target"] = rs.normal(1.0, 2.0, shapes["relu4_1"]).astype(np.float32)
  loss_c = content_loss(nchw(feats["out_relu4_1"]), nchw(feats["target"]))
  loss_s = sum(style_loss(nchw(feats[f"out_{n}"]), nchw(feats[f"style_{n}"])) for n in shapes)
  np.savez(os.path.join(OUT, "losses.npz"), **feats, content_loss=loss_c.numpy(),
           style_loss=loss_s.numpy())

  # One training step of net.py / train.py.
  def seq(layers, decoder):
    mods, last = [], -1
    for idx, cin, cout, k in layers:
      gap = idx - last - 1  # the ReLU / pool / upsample / pad modules between convolutions
      if decoder:
        mods += [nn.ReLU()] if last >= 0 else []
        mods += [nn.Upsample(scale_factor=2, mode="nearest")] if gap == 3 else []
        mods += [nn.ReflectionPad2d((1, 1, 1, 1))]
      else:
        mods += [nn.ReLU()] if last > 0 else []
        mods += [nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True)] if gap == 3 else []
        mods += [nn.ReflectionPad2d((1, 1, 1, 1))] if k == 3 else []
      assert len(mods) == idx, (idx, len(mods))
      mods.append(nn.Conv2d(cin, cout, (k, k)))
      last = idx
    if not decoder:
      mods.append(nn.ReLU())
    return nn.Sequential(*mods)

  vgg_sd = seeded_weights.vgg_state_dict()
  dec_sd = seeded_weights.decoder_state_dict()
  vgg = seq(seeded_weights.VGG_CONVS[:seeded_weights.VGG_USED], False)
  decoder = seq(seeded_weights.DECODER_CONVS, True)
  vgg.load_state_dict({k: torch.from_numpy(v) for k, v in vgg_sd.items()})
  decoder.load_state_dict({k: torch.from_numpy(v) for k, v in dec_sd.items()})
  for p in vgg.parameters():
    p.requires_grad = False
  enc = [vgg[:4], vgg[4:11], vgg[11:18], vgg[18:31]]  # net.py enc_1 .. enc_4

  def encode_with_intermediate(x):
    out = [x]
    for e in enc:
      out.append(e(out[-1]))
    return out[1:]

  def forward(content, style):  # net.py Net.forward with alpha = 1
    style_feats = encode_with_intermediate(style)
    t = adain(encode_with_intermediate(content)[-1], style_feats[-1])
    g_feats = encode_with_intermediate(decoder(t))
    loss_s = style_loss(g_feats[0], style_feats[0])
    for i in range(1, 4):
      loss_s = loss_s + style_loss(g_feats[i], style_feats[i])
    return content_loss(g_feats[-1], t), loss_s

  content_u8 = rs.randint(0, 256, (4, 32, 32, 3)).astype(np.uint8)  # what the pipeline gives
  style_u8 = rs.randint(0, 256, (4, 32, 32, 3)).astype(np.uint8)
  content, style = content_u8.astype(np.float32) / 255, style_u8.astype(np.float32) / 255
  optimizer = torch.optim.Adam(decoder.parameters(), lr=1e-4)
  loss_c0, loss_s0 = forward(nchw(content), nchw(style))
  loss = 1.0 * loss_c0 + 10.0 * loss_s0
  optimizer.zero_grad()
  loss.backward()
  grad_bias = decoder[28].bias.grad.numpy().copy()
  optimizer.step()
  with torch.no_grad():
    loss_c1, loss_s1 = forward(nchw(content), nchw(style))
  np.savez(os.path.join(OUT, "step.npz"), content=content_u8, style=style_u8,
           weights_checksum=seeded_weights.checksum(vgg_sd, dec_sd),
           content_loss0=loss_c0.detach().numpy(), style_loss0=loss_s0.detach().numpy(),
           grad_28_bias=grad_bias, bias_28_after=decoder[28].bias.detach().numpy(),
           content_loss1=loss_c1.numpy(), style_loss1=loss_s1.numpy())
  print(f"wrote {OUT}: step-0 losses {loss_c0.item():.6g} {loss_s0.item():.6g}, "
        f"step-1 {loss_c1.item():.6g} {loss_s1.item():.6g}")


if __name__ == "__main__":
  main()
