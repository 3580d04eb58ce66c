"""Reference training losses from PyTorch, for tests/test_losses.py and tests/test_train_step.py.

Run with the fixtures venv (torch + numpy only): ``.venv-fixtures/bin/python
tools/make_train_fixtures.py``. It writes tests/fixtures/train/{losses,step}.npz:

* losses.npz: random relu1_1..relu4_1 features and an AdaIN target (NHWC) with pytorch-AdaIN's
  content and style losses of them (net.py's calc_mean_std, calc_content_loss, calc_style_loss).
* step.npz: four 32 px uint8 content and style images, and net.py's forward plus one step of
  train.py's Adam (lr 1e-4, decay step 0) on tests/seeded_weights.py's weights (too big to
  store: the tests rebuild them from the same seeds; a checksum catches a changed recipe).

The reference network and losses are make_parity_fixtures.py's.
"""

from __future__ import annotations

import os

import numpy as np

import make_parity_fixtures as ref  # noqa: E402  (sets sys.path for seeded_weights too)
import seeded_weights  # noqa: E402

OUT = os.path.join(ref.ROOT, "tests", "fixtures", "train")
SEED = 20170101


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


if __name__ == "__main__":
  main()
