"""python -m adain.augment.bench: what style augmentation costs next to the training it feeds.

Times, side by side in one process, ``StyleAugment`` on a batch (``--batch`` images of
``--size``², every image stylized: the work does not depend on ``p``) for each network, and one
SGD training step of a ResNet-50 (this module's Flax NNX one, torchvision's layout, on random
data) at the same batch; prints JSON lines: milliseconds per batch, images per second, and the
augmentation's cost as a fraction of the ResNet-50 step (the issue's goal for MicroAST: at most
a quarter). Random weights: speed depends on neither weights nor images.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

RESNET50_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (width, blocks, stride)


class Bottleneck(nnx.Module):
  """1x1, 3x3 (strided), 1x1 x4 convolutions, each batch-normed, plus the (projected) input."""

  def __init__(self, cin: int, width: int, stride: int, rngs: nnx.Rngs):
    conv = lambda i, o, k, s=1: nnx.Conv(i, o, (k, k), strides=s, padding=k // 2,  # noqa: E731
                                         use_bias=False, rngs=rngs)
    self.convs = nnx.List([conv(cin, width, 1), conv(width, width, 3, stride), conv(width, 4 * width, 1)])
    self.norms = nnx.List([nnx.BatchNorm(c, rngs=rngs) for c in (width, width, 4 * width)])
    self.projected = stride != 1 or cin != 4 * width
    if self.projected:  # the first block of a stage: a 1x1 (strided) projection of the input
      self.project = conv(cin, 4 * width, 1, stride)
      self.project_norm = nnx.BatchNorm(4 * width, rngs=rngs)

  def __call__(self, x):
    y = x
    for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
      y = norm(conv(y))
      y = nnx.relu(y) if i < 2 else y
    skip = self.project_norm(self.project(x)) if self.projected else x
    return nnx.relu(y + skip)


class ResNet50(nnx.Module):
  """He et al.'s ResNet-50 (v1.5: the stride in the 3x3 convolution), as torchvision's."""

  def __init__(self, classes: int = 1000, rngs: nnx.Rngs | None = None):
    rngs = rngs or nnx.Rngs(0)
    self.stem = nnx.Conv(3, 64, (7, 7), strides=2, padding=3, use_bias=False, rngs=rngs)
    self.stem_norm = nnx.BatchNorm(64, rngs=rngs)
    blocks, cin = [], 64
    for width, n, stride in RESNET50_STAGES:
      for i in range(n):
        blocks.append(Bottleneck(cin, width, stride if i == 0 else 1, rngs))
        cin = 4 * width
    self.blocks = nnx.List(blocks)
    self.head = nnx.Linear(cin, classes, rngs=rngs)

  def __call__(self, x_bhwc):
    x = nnx.relu(self.stem_norm(self.stem(x_bhwc)))
    x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    for block in self.blocks:
      x = block(x)
    return self.head(jnp.mean(x, axis=(1, 2)))


@nnx.jit(donate_argnums=(0, 1))
def resnet_step(model: ResNet50, optimizer: nnx.Optimizer, images, labels):
  """One SGD (momentum 0.9) step on softmax cross-entropy, batch norm in training mode."""
  def loss_fn(model):
    logits = model(images)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  loss, grads = nnx.value_and_grad(loss_fn)(model)
  optimizer.update(model, grads)
  return loss


def _median_ms(fn, repeats: int) -> tuple[float, float]:
  """(first call's ms, which compiles, and the median ms of ``repeats`` more)."""
  times = []
  for _ in range(repeats + 1):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(1000 * (time.perf_counter() - t0))
  return times[0], statistics.median(times[1:])


def bench_resnet(batch: int, size: int, repeats: int) -> dict:
  model = ResNet50()
  optimizer = nnx.Optimizer(model, optax.sgd(0.1, momentum=0.9), wrt=nnx.Param)
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.random((batch, size, size, 3), np.float32))
  labels = jnp.asarray(rng.integers(0, 1000, batch))
  first, ms = _median_ms(lambda: resnet_step(model, optimizer, images, labels), repeats)
  return {"bench": "resnet50_train_step", "batch": batch, "size": size, "first_call_ms": round(first),
          "ms_per_step": round(ms, 1), "images_per_s": round(1000 * batch / ms, 1)}


def bench_augment(model: str, batch: int, size: int, repeats: int, styles: int = 16) -> dict:
  from adain.augment import StyleAugment
  from adain.inference.stylizer import Stylizer

  if model == "microast":
    from adain.models.microast.network import MicroAST as Network
  else:
    from adain.models.adain.network import AdaIN as Network
  stylizer = Stylizer(Network())
  rng = np.random.default_rng(0)
  bank = stylizer.concat_codes([stylizer.encode_style(rng.random((64, 64, 3), np.float32))
                                for _ in range(styles)])
  aug = StyleAugment(stylizer, bank, p=1.0)
  images = jnp.asarray(rng.random((batch, size, size, 3), np.float32))
  step = jax.jit(aug)
  keys = iter(jax.random.split(jax.random.key(0), repeats + 1))
  first, ms = _median_ms(lambda: step(next(keys), images), repeats)
  return {"bench": "augment", "model": model, "batch": batch, "size": size,
          "first_call_ms": round(first), "ms_per_batch": round(ms, 1),
          "images_per_s": round(1000 * batch / ms, 1)}


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m adain.augment.bench", description=__doc__.split("\n")[0])
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--size", type=int, default=224)
  p.add_argument("--models", default="adain,microast", help="networks to time, comma-separated")
  p.add_argument("--repeats", type=int, default=3, help="timed calls after the one that compiles")
  args = p.parse_args(argv)
  d = jax.devices()[0]
  print(json.dumps({"bench": "augment", "device": d.device_kind, "platform": d.platform,
                    "machine": platform.machine(), "cpus": os.cpu_count()}), flush=True)
  resnet = bench_resnet(args.batch, args.size, args.repeats)
  print(json.dumps(resnet), flush=True)
  for model in args.models.split(","):
    row = bench_augment(model, args.batch, args.size, args.repeats)
    row["of_resnet50_step"] = round(row["ms_per_batch"] / resnet["ms_per_step"], 3)
    print(json.dumps(row), flush=True)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
