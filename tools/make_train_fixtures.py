"""Reference training losses from PyTorch, for tests/test_losses.py and tests/test_train.py.

Run with the fixtures venv (torch + numpy only): ``.venv-fixtures/bin/python
tools/make_train_fixtures.py``. It writes tests/fixtures/train/{losses,step,microast_step}.npz:

* losses.npz: random relu1_1..relu4_1 features and an AdaIN target (NHWC) with pytorch-AdaIN's
  content and style losses of them (net.py's calc_mean_std, calc_content_loss, calc_style_loss).
* step.npz: four 32 px uint8 content and style images, and net.py's forward plus one step of
  train.py's Adam (lr 1e-4, decay step 0) on tests/seeded_weights.py's weights (too big to
  store: the tests rebuild them from the same seeds; a checksum catches a changed recipe).
* microast_step.npz: MicroAST's Net.forward (net_microAST.py, ``microast_forward`` below) and one
  step of train_microAST.py's Adam over its four parts, on tests/fixtures/microast/weights with
  the same VGG and four other 32 px pairs: the three losses before and after, and every bias and
  the last conv's kernel after the step, with their gradients.

The reference networks and losses are make_parity_fixtures.py's and make_microast_fixtures.py's.
"""

from __future__ import annotations

import os

import numpy as np

import make_microast_fixtures as mref  # noqa: E402
import make_parity_fixtures as ref  # noqa: E402  (sets sys.path for seeded_weights too)
import seeded_weights  # noqa: E402

OUT = os.path.join(ref.ROOT, "tests", "fixtures", "train")
SEED = 20170101


MICROAST_WEIGHTS = os.path.join(mref.OUT, "weights")


def microast_training(weights_dir: str = MICROAST_WEIGHTS):
  """train_microAST.py's set-up: (frozen vgg[:31], MicroAST's Net with weights_dir's four parts,
  Adam at lr 1e-4 over all of them)."""
  import torch

  vgg, _, _ = ref.reference_modules(seeded_weights.vgg_state_dict(full=True),
                                    seeded_weights.decoder_state_dict())
  for p in vgg.parameters():
    p.requires_grad = False
  net = mref.Net()
  for part, module in net.parts.items():
    module.load_state_dict(torch.load(os.path.join(weights_dir, mref.FILENAMES[part]),
                                      weights_only=True))
    module.train()
  params = [p for m in net.parts.values() for p in m.parameters()]
  return vgg, net, torch.optim.Adam(params, lr=1e-4)


def signal_distance(a, b, i, j):
  """MicroAST's distance of two images' style signals: calc_style_loss of the encoder levels
  (MSE of means + MSE of stds) plus mse_loss of each modulator signal, summed."""
  import torch.nn.functional as F

  return sum(F.mse_loss(x[i], y[j]) for x, y in zip(a, b))


def microast_forward(vgg, net, content, style):
  """net_microAST.py's Net.forward: (content, style, contrastive) losses of the output at
  alpha 1, not clamped, cropped to the content's size."""
  import torch.nn.functional as F

  style_feats = ref.encode_with_intermediate(vgg, style)
  content_feats = ref.encode_with_intermediate(vgg, content)
  code = net.style_code(style)
  _, f2 = net.parts["content_encoder"](content)
  out = net.parts["decoder"](f2, code)[:, :, :content.shape[2], :content.shape[3]]
  out_feats = ref.encode_with_intermediate(vgg, out)
  loss_c = F.mse_loss(out_feats[-1], content_feats[-1])
  loss_s = sum(ref.style_loss(o, s) for o, s in zip(out_feats, style_feats))
  out_code = net.style_code(out)
  n = content.shape[0]
  loss_k = 0.0
  for i in range(n):
    negative = sum(signal_distance(out_code, code, i, j) for j in range(n) if j != i)
    loss_k = loss_k + signal_distance(out_code, code, i, i) / negative
  return loss_c, loss_s, loss_k


def microast_step(rs, nchw) -> None:
  import torch

  vgg, net, optimizer = microast_training()
  content_u8 = rs.randint(0, 256, (4, 32, 32, 3)).astype(np.uint8)
  style_u8 = rs.randint(0, 256, (4, 32, 32, 3)).astype(np.uint8)
  content, style = (nchw(x.astype(np.float32) / 255) for x in (content_u8, style_u8))
  before = microast_forward(vgg, net, content, style)
  loss = before[0] + 3.0 * before[1] + 3.0 * before[2]
  optimizer.zero_grad()
  loss.backward()

  def stored(prefix, value):  # every bias and the last conv's kernel
    return {f"{prefix}/{part}/{k}": value(p).numpy().copy() for part, m in net.parts.items()
            for k, p in m.named_parameters() if k.endswith(".bias") or k == "dec3.10.conv_layer.weight"}

  params = stored("grad", lambda p: p.grad)  # where a gradient is ~0, Adam's step is its noise
  optimizer.step()
  params.update(stored("after", lambda p: p.detach()))
  with torch.no_grad():
    after = microast_forward(vgg, net, content, style)
  names = ("content_loss", "style_loss", "contrastive_loss")
  np.savez(os.path.join(OUT, "microast_step.npz"), content=content_u8, style=style_u8,
           vgg_checksum=seeded_weights.checksum(seeded_weights.vgg_state_dict()),
           **{f"{k}0": v.detach().numpy() for k, v in zip(names, before)},
           **{f"{k}1": v.numpy() for k, v in zip(names, after)}, **params)
  print(f"wrote microast_step.npz: step-0 losses {[round(x.item(), 6) for x in before]}, "
        f"step-1 {[round(x.item(), 6) for x in after]}")


def main() -> None:
  import torch

  torch.use_deterministic_algorithms(True)

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
  loss_c = torch.nn.functional.mse_loss(nchw(feats["out_relu4_1"]), nchw(feats["target"]))
  loss_s = sum(ref.style_loss(nchw(feats[f"out_{n}"]), nchw(feats[f"style_{n}"])) for n in shapes)
  np.savez(os.path.join(OUT, "losses.npz"), **feats, content_loss=loss_c.numpy(),
           style_loss=loss_s.numpy())

  # One training step of net.py / train.py.
  vgg_sd = seeded_weights.vgg_state_dict()
  dec_sd = seeded_weights.decoder_state_dict()
  vgg, decoder, optimizer = ref.reference_training(dec_sd)
  content_u8 = rs.randint(0, 256, (4, 32, 32, 3)).astype(np.uint8)  # what the pipeline gives
  style_u8 = rs.randint(0, 256, (4, 32, 32, 3)).astype(np.uint8)
  content, style = content_u8.astype(np.float32) / 255, style_u8.astype(np.float32) / 255
  loss_c0, loss_s0 = ref.net_forward(vgg, decoder, nchw(content), nchw(style))
  loss = 1.0 * loss_c0 + 10.0 * loss_s0
  optimizer.zero_grad()
  loss.backward()
  grad_bias = decoder[28].bias.grad.numpy().copy()
  optimizer.step()
  with torch.no_grad():
    loss_c1, loss_s1 = ref.net_forward(vgg, decoder, nchw(content), nchw(style))
  np.savez(os.path.join(OUT, "step.npz"), content=content_u8, style=style_u8,
           weights_checksum=seeded_weights.checksum(vgg_sd, dec_sd),
           content_loss0=loss_c0.detach().numpy(), style_loss0=loss_s0.detach().numpy(),
           grad_28_bias=grad_bias, bias_28_after=decoder[28].bias.detach().numpy(),
           content_loss1=loss_c1.numpy(), style_loss1=loss_s1.numpy())
  print(f"wrote {OUT}: step-0 losses {loss_c0.item():.6g} {loss_s0.item():.6g}, "
        f"step-1 {loss_c1.item():.6g} {loss_s1.item():.6g}")
  microast_step(rs, nchw)


if __name__ == "__main__":
  main()
