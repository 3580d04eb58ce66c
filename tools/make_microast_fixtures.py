"""Writes tests/fixtures/microast: seeded MicroAST weights in the published layout, tiny images,
and what MicroAST's PyTorch code computes from them.

Run with the fixtures virtualenv (torch, numpy, pillow):

  .venv-fixtures/bin/python tools/make_microast_fixtures.py

MicroAST's modules (github.com/EndyWon/MicroAST, net_microAST.py and function.py) are
re-implemented below in PyTorch, module for module, so that their state dicts carry the published
key names; the weights are drawn from a seed and saved with torch.save in the legacy layout the
published ``*_iter_160000.pth.tar`` files use. tests/test_microast.py checks our JAX network
against the outputs without torch. Arrays are stored NHWC float32 (images uint8) in expected.npz.

alpha is adain's definition (see adain.models.microast.codes): the style's code interpolated with
the content's own code (the style encoder and modulator run on the content image), not MicroAST's
own feature blending; two styles mix as the weighted average of their codes.

``--real DIR --content IMG --style IMG --out FILE.npz`` instead runs the published weights in DIR
on one pair (shorter side ``--side``) and saves the inputs and outputs, to compare by hand.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from PIL import Image
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "microast")
PARTS = ("content_encoder", "style_encoder", "modulator", "decoder")
FILENAMES = {part: f"{part}_iter_160000.pth.tar" for part in PARTS}

# name -> (height, width, seed): an even content, an odd one (not a multiple of 4 either), and
# two styles of different sizes (each is encoded alone).
IMAGES = {
    "content_even": (48, 64, 20),
    "content_odd": (45, 37, 21),
    "style_a": (40, 56, 22),
    "style_b": (39, 33, 23),
}
ALPHA = 0.6
MIX_WEIGHTS = (1.0, 3.0)
SEED = 7
OUT_GAIN = 0.4  # the last conv's kernel scale: the output's spread (see seeded_net)


# --- MicroAST's computation, as its code does it (NCHW). ---

def mean_std(x, eps=1e-5):
  """Per-image, per-channel mean and std over H, W: the variance unbiased, eps added before the
  square root (function.py's calc_mean_std). Shapes (N, C, 1, 1)."""
  n, c = x.shape[:2]
  flat = x.reshape(n, c, -1)
  return flat.mean(dim=2).reshape(n, c, 1, 1), (flat.var(dim=2) + eps).sqrt().reshape(n, c, 1, 1)


def feat_mod(x, mean, std):
  """AdaIN of x to the given statistics (function.py's adaptive_instance_normalization, with the
  style statistics passed in rather than computed from a style feature map)."""
  x_mean, x_std = mean_std(x)
  return (x - x_mean) / x_std * std + mean


class ConvLayer(nn.Module):
  """Reflection pad of k // 2, then the conv (its module named conv_layer, as published)."""

  def __init__(self, cin, cout, k, stride=1, groups=1):
    super().__init__()
    self.pad = nn.ReflectionPad2d(k // 2)
    self.conv_layer = nn.Conv2d(cin, cout, k, stride, groups=groups)

  def forward(self, x):
    return self.conv_layer(self.pad(x))


class ResidualLayer(nn.Module):
  def __init__(self, channels=64):
    super().__init__()
    self.conv1 = ConvLayer(channels, channels, 3)
    self.conv2 = ConvLayer(channels, channels, 3)

  def forward(self, x, w=None, b=None):
    if w is None:
      return x + self.conv2(torch.relu(self.conv1(x)))
    h = torch.relu(w * self.conv1(x) + b * x)
    return x + (w * self.conv2(h) + b * h)


class Encoder(nn.Module):
  def __init__(self):
    super().__init__()
    self.enc1 = nn.Sequential(
        ConvLayer(3, 16, 9), nn.ReLU(),
        ConvLayer(16, 32, 3, 2, 16), nn.ReLU(),
        ConvLayer(32, 32, 1), nn.ReLU(),
        ConvLayer(32, 64, 3, 2, 32), nn.ReLU(),
        ConvLayer(64, 64, 1), nn.ReLU(),
        ResidualLayer(64))
    self.enc2 = nn.Sequential(ResidualLayer(64))

  def forward(self, x):
    f1 = self.enc1(x)
    return f1, self.enc2(f1)


class Modulator(nn.Module):
  def __init__(self):
    super().__init__()
    for name in ("weight1", "bias1", "weight2", "bias2"):
      setattr(self, name, nn.Sequential(ConvLayer(64, 64, 3, 1, 64), nn.AdaptiveAvgPool2d((1, 1))))

  def forward(self, f1, f2):
    return self.weight1(f1), self.bias1(f1), self.weight2(f2), self.bias2(f2)


class Decoder(nn.Module):
  def __init__(self):
    super().__init__()
    self.dec1 = ResidualLayer(64)
    self.dec2 = ResidualLayer(64)
    self.dec3 = nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear"),
        ConvLayer(64, 32, 3, 1, 32), nn.ReLU(),
        ConvLayer(32, 32, 1), nn.ReLU(),
        nn.Upsample(scale_factor=2, mode="bilinear"),
        ConvLayer(32, 16, 3, 1, 16), nn.ReLU(),
        ConvLayer(16, 16, 1), nn.ReLU(),
        ConvLayer(16, 3, 9))

  def forward(self, f2, code):
    """code: (mean1, std1, w1, b1, mean2, std2, w2, b2), each (N, 64, 1, 1)."""
    mean1, std1, w1, b1, mean2, std2, w2, b2 = code
    x = self.dec1(feat_mod(f2, mean2, std2), w2, b2)
    x = self.dec2(feat_mod(x, mean1, std1), w1, b1)
    return self.dec3(x)


class Net:
  def __init__(self):
    self.parts = {"content_encoder": Encoder(), "style_encoder": Encoder(),
                  "modulator": Modulator(), "decoder": Decoder()}
    for m in self.parts.values():
      m.eval()

  def style_code(self, images):
    """The style code: statistics of the style features at both levels and the modulator's."""
    f1, f2 = self.parts["style_encoder"](images)
    w1, b1, w2, b2 = self.parts["modulator"](f1, f2)
    return (*mean_std(f1), w1, b1, *mean_std(f2), w2, b2)

  def stylize(self, content, code, alpha=1.0):
    """The decoder's output cropped to the content's size; alpha blends codes with the content's."""
    if alpha != 1.0:
      own = self.style_code(content)
      code = tuple(alpha * s + (1 - alpha) * c for s, c in zip(code, own))
    _, f2 = self.parts["content_encoder"](content)
    out = self.parts["decoder"](f2, code)
    return out[:, :, :content.shape[2], :content.shape[3]]


def mix(codes, weights):
  w = torch.tensor(weights, dtype=torch.float32) / sum(weights)
  return tuple(sum(wi * c[k] for wi, c in zip(w, codes)) for k in range(len(codes[0])))


# --- Fixtures. ---

def synthetic_image(h: int, w: int, seed: int) -> np.ndarray:
  """A smooth, colourful uint8 HWC image with some texture: sums of random plane waves + noise."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:h, 0:w].astype(np.float64)
  img = np.zeros((h, w, 3))
  for c in range(3):
    for _ in range(4):
      fy, fx = rng.uniform(-0.5, 0.5, 2)
      img[..., c] += rng.uniform(0.3, 1.0) * np.sin(fy * y + fx * x + rng.uniform(0, 2 * np.pi))
  img = 0.5 + 0.25 * img / 2.0 + rng.normal(0, 0.05, img.shape)
  return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def seeded_net() -> Net:
  """Weights from a seed, drawn so that every part matters: torch's default init shrinks the
  signal layer by layer until the output is the last bias alone. Kernels are He-uniform,
  U(-sqrt(6 / fan_in), sqrt(6 / fan_in)), biases U(-0.1, 0.1); the modulator's give w near 1
  and b near 0.5 (rather than both near 0); the last conv's kernel is scaled by OUT_GAIN, and
  write_fixtures sets its bias so that the output's mean is 0.5 (a clip to [0, 1] keeps most
  pixels)."""
  torch.manual_seed(SEED)
  net = Net()
  with torch.no_grad():
    for module in net.parts.values():
      for conv in module.modules():
        if isinstance(conv, nn.Conv2d):
          fan_in = conv.weight[0].numel()
          conv.weight.uniform_(-(6 / fan_in) ** 0.5, (6 / fan_in) ** 0.5)
          conv.bias.uniform_(-0.1, 0.1)
    mod = net.parts["modulator"]
    for level in (1, 2):
      getattr(mod, f"weight{level}")[0].conv_layer.bias += 1.0
      getattr(mod, f"bias{level}")[0].conv_layer.bias += 0.5
    out = net.parts["decoder"].dec3[-1].conv_layer
    out.weight *= OUT_GAIN
  return net


def center_output(net: Net, content, code) -> None:
  """Shifts the last conv's bias so that the content's stylization has mean 0.5 per channel."""
  with torch.no_grad():
    mean = net.stylize(content, code).mean(dim=(0, 2, 3))
    net.parts["decoder"].dec3[-1].conv_layer.bias += 0.5 - mean


def to_nchw(img_hwc: np.ndarray) -> torch.Tensor:
  return torch.from_numpy(img_hwc.astype(np.float32) / 255.0).permute(2, 0, 1)[None]


def to_nhwc(t) -> np.ndarray:
  return t.detach().permute(0, 2, 3, 1).numpy().astype(np.float32)


def code_arrays(prefix: str, code) -> dict[str, np.ndarray]:
  names = ("mean1", "std1", "w1", "b1", "mean2", "std2", "w2", "b2")
  return {f"{prefix}/{n}": a.detach().reshape(a.shape[0], -1).numpy().astype(np.float32)
          for n, a in zip(names, code)}


def write_fixtures(out: str) -> None:
  torch.set_num_threads(2)
  net = seeded_net()
  images = {name: synthetic_image(*spec) for name, spec in IMAGES.items()}
  center_output(net, to_nchw(images["content_even"]), net.style_code(to_nchw(images["style_a"])))
  os.makedirs(os.path.join(out, "weights"), exist_ok=True)
  for part, module in net.parts.items():  # the published files' legacy (pre-zip) torch.save layout
    torch.save(module.state_dict(), os.path.join(out, "weights", FILENAMES[part]),
               _use_new_zipfile_serialization=False)
  arrays = {f"image/{name}": img for name, img in images.items()}
  with torch.no_grad():
    codes = {name: net.style_code(to_nchw(images[name])) for name in ("style_a", "style_b")}
    mixed = mix([codes["style_a"], codes["style_b"]], MIX_WEIGHTS)
    for name in ("style_a", "style_b"):
      arrays.update(code_arrays(f"code/{name}", codes[name]))
    arrays.update(code_arrays("code/mixed", mixed))
    for content in ("content_even", "content_odd"):
      c = to_nchw(images[content])
      arrays.update(code_arrays(f"code/{content}", net.style_code(c)))
      arrays[f"out/{content}/alpha1"] = to_nhwc(net.stylize(c, codes["style_a"]))
      arrays[f"out/{content}/alpha{ALPHA}"] = to_nhwc(net.stylize(c, codes["style_a"], ALPHA))
      arrays[f"out/{content}/mixed"] = to_nhwc(net.stylize(c, mixed))
  arrays["alpha"] = np.float32(ALPHA)
  arrays["mix_weights"] = np.asarray(MIX_WEIGHTS, np.float32)
  np.savez_compressed(os.path.join(out, "expected.npz"), **arrays)
  for k, v in arrays.items():  # what a reader needs to see the fixtures are not degenerate
    if k.startswith("out/"):
      ref = arrays[k.rsplit("/", 1)[0] + "/alpha1"]
      print(f"{k}: {v.shape} range [{v.min():.3f}, {v.max():.3f}] mean {v.mean():.3f} "
            f"std {v.std():.3f}, mean |diff| from alpha1 {np.abs(v - ref).mean():.3f}")


def load_image(path: str, side: int) -> np.ndarray:
  img = Image.open(path).convert("RGB")
  w, h = img.size
  s = side / min(w, h)
  return np.asarray(img.resize((round(w * s), round(h * s)), Image.BICUBIC))


def run_real(weights_dir: str, content: str, style: str, side: int, out: str) -> None:
  """The published weights on one pair, at alpha 1 and ALPHA: inputs and outputs to ``out``."""
  torch.set_num_threads(2)
  net = Net()
  for part, module in net.parts.items():
    module.load_state_dict(torch.load(os.path.join(weights_dir, FILENAMES[part]), weights_only=True))
  c_img, s_img = load_image(content, side), load_image(style, side)
  with torch.no_grad():
    c, code = to_nchw(c_img), net.style_code(to_nchw(s_img))
    np.savez(out, content=c_img, style=s_img, alpha1=to_nhwc(net.stylize(c, code)),
             alpha_blend=to_nhwc(net.stylize(c, code, ALPHA)), alpha=np.float32(ALPHA))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--real", help="a folder of the four published files: compare by hand")
  parser.add_argument("--content")
  parser.add_argument("--style")
  parser.add_argument("--side", type=int, default=512)
  parser.add_argument("--out", default=OUT)
  args = parser.parse_args()
  if args.real:
    run_real(args.real, args.content, args.style, args.side, args.out)
  else:
    write_fixtures(args.out)


if __name__ == "__main__":
  main()
