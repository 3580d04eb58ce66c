"""A small Flax NNX classifier trained with and without StyleAugment, on shapes it draws itself.

Everything but the stylizer's weights is drawn here with numpy (shapes on gradients, procedural
style textures), so the example downloads no data. The two runs share the seed, initial weights
and batches; the augmented run stylizes each batch inside its jitted train step. Both are scored
on the plain test split and on that split stylized with held-out styles: how much accuracy a
change of texture and colour costs each of them.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from PIL import Image, ImageDraw

from adain.augment import StyleAugment
from adain.media.images import to_uint8

CLASSES = ("circle", "square", "triangle", "cross")


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
  """Pixel centres in [0, 1], (x, y)."""
  y, x = np.mgrid[0:size, 0:size]
  return (x + 0.5) / size, (y + 0.5) / size


def _shape_mask(kind: int, x, y, cx, cy, r, angle) -> np.ndarray:
  """Where shape ``kind`` of circumradius ``r`` centred at (cx, cy), turned by ``angle``, lies."""
  c, s = np.cos(angle), np.sin(angle)
  u, v = c * (x - cx) + s * (y - cy), -s * (x - cx) + c * (y - cy)
  if kind == 0:
    return u ** 2 + v ** 2 <= r ** 2
  if kind == 1:
    return np.maximum(abs(u), abs(v)) <= r * 0.75
  if kind == 2:  # three half-planes, each at the inradius r/2
    normals = np.pi / 2 + np.arange(3) * 2 * np.pi / 3
    return np.all([u * np.cos(a) + v * np.sin(a) <= r / 2 for a in normals], 0)
  arm = r * 0.3
  return ((abs(u) <= arm) & (abs(v) <= r)) | ((abs(v) <= arm) & (abs(u) <= r))


def draw_shapes(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """``n`` images (n, size, size, 3) float32 in [0, 1] and their labels (n,) int32, the classes
  equally often: one shape of random position, size, turn and colour on a random gradient, the
  shape's colour kept apart from the background's so that every label can be seen."""
  rng = np.random.default_rng(seed)
  x, y = _grid(size)
  labels = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int32)
  images = np.empty((n, size, size, 3), np.float32)
  for i, kind in enumerate(labels):
    c0, c1, fg = rng.random((3, 3))
    while min(abs(fg - c0).sum(), abs(fg - c1).sum()) < 0.6:
      fg = rng.random(3)
    a = rng.uniform(0, 2 * np.pi)
    t = np.clip(0.5 + (x - 0.5) * np.cos(a) + (y - 0.5) * np.sin(a), 0, 1)[..., None]
    img = (1 - t) * c0 + t * c1
    r = rng.uniform(0.18, 0.32)
    cx, cy = rng.uniform(r, 1 - r, 2)
    img[_shape_mask(kind, x, y, cx, cy, r, rng.uniform(0, 2 * np.pi))] = fg
    images[i] = np.clip(img + 0.03 * rng.standard_normal(img.shape), 0, 1)
  return images, labels


def _field(kind: int, x, y, rng) -> np.ndarray:
  """A scalar texture in [0, 1]: stripes, checkers, plasma (1/f noise) or blobs."""
  a = rng.uniform(0, np.pi)
  u, v = x * np.cos(a) + y * np.sin(a), -x * np.sin(a) + y * np.cos(a)
  f = rng.uniform(3, 10)
  if kind == 0:
    t = 0.5 + 0.5 * np.sin(2 * np.pi * f * u + rng.uniform(0, 2 * np.pi))
  elif kind == 1:
    t = (np.floor(u * f) + np.floor(v * f)) % 2
  elif kind == 2:
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(x.shape[0]), np.fft.fftfreq(x.shape[0])))
    spectrum = rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape)
    t = np.real(np.fft.ifft2(spectrum / np.maximum(k, 1 / x.shape[0]) ** rng.uniform(1.5, 2.5)))
  else:
    centres, widths, signs = rng.random((12, 2)), rng.uniform(0.03, 0.15, 12), rng.choice([-1, 1], 12)
    t = sum(s * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * w ** 2))
            for (cx, cy), w, s in zip(centres, widths, signs))
  return (t - t.min()) / max(t.max() - t.min(), 1e-6)


def draw_styles(n: int, size: int, seed: int) -> np.ndarray:
  """``n`` style images (n, size, size, 3) float32: the four texture kinds in turn, each through
  a random palette of 2-5 colours, with a little grain."""
  rng = np.random.default_rng(seed)
  x, y = _grid(size)
  styles = np.empty((n, size, size, 3), np.float32)
  for i in range(n):
    t = _field(i % 4, x, y, rng)
    palette = rng.random((rng.integers(2, 6), 3))
    stops = np.linspace(0, 1, len(palette))
    img = np.stack([np.interp(t, stops, palette[:, c]) for c in range(3)], -1)
    styles[i] = np.clip(img + 0.04 * rng.standard_normal(img.shape), 0, 1)
  return styles


def bank(stylizer, styles: np.ndarray):
  """The style codes of ``styles`` as one bank, for StyleAugment."""
  return stylizer.concat_codes([stylizer.encode_style(s) for s in styles])


class Classifier(nnx.Module):
  """Four conv blocks and a small head, on each image standardized (its mean and spread: the
  colours say nothing of the class), max-pooled over space (wherever the shape lies)."""

  def __init__(self, rngs: nnx.Rngs, classes: int = len(CLASSES)):
    channels = ((3, 16), (16, 32), (32, 64), (64, 64))
    self.convs = nnx.List([nnx.Conv(a, b, (3, 3), rngs=rngs) for a, b in channels])
    self.hidden = nnx.Linear(64, 64, rngs=rngs)
    self.head = nnx.Linear(64, classes, rngs=rngs)

  def __call__(self, x):
    x = (x - x.mean((1, 2, 3), keepdims=True)) / (x.std((1, 2, 3), keepdims=True) + 1e-3)
    for conv in self.convs:
      x = nnx.max_pool(jax.nn.relu(conv(x)), (2, 2), strides=(2, 2))
    return self.head(jax.nn.relu(self.hidden(x.max(axis=(1, 2)))))


def augment(aug: StyleAugment | None, key: jax.Array, images: jax.Array) -> jax.Array:
  """The images the train step learns from: ``aug``'s, or the plain ones without it."""
  return images if aug is None else aug(key, images)


@nnx.jit
def train_step(model: Classifier, optimizer: nnx.Optimizer, aug: StyleAugment | None,
               key: jax.Array, images: jax.Array, labels: jax.Array) -> jax.Array:
  """One Adam step. ``aug`` stylizes the batch here, traced into the same program as the
  classifier: the point of StyleAugment, no host pipeline and no copies between host and device."""
  images = augment(aug, key, images)

  def loss_fn(model):
    return optax.softmax_cross_entropy_with_integer_labels(model(images), labels).mean()

  loss, grads = nnx.value_and_grad(loss_fn)(model)
  optimizer.update(model, grads)
  return loss


def batch(images: np.ndarray, labels: np.ndarray, step: int, batch_size: int, seed: int):
  """Step ``step``'s batch and augmentation key: the same for both runs, from the seed alone."""
  rng = np.random.default_rng([seed, step])
  i = rng.choice(len(images), batch_size, replace=False)
  return jax.random.fold_in(jax.random.key(seed), step), images[i], labels[i]


def train(images, labels, aug: StyleAugment | None, steps: int, batch_size: int, seed: int,
          lr: float = 3e-3) -> Classifier:
  """A classifier trained for ``steps`` steps, from weights drawn from ``seed``."""
  model = Classifier(nnx.Rngs(seed))
  optimizer = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)
  for step in range(steps):
    train_step(model, optimizer, aug, *batch(images, labels, step, batch_size, seed))
  return model


@nnx.jit
def _predict(model: Classifier, images: jax.Array) -> jax.Array:
  return model(images).argmax(-1)


def accuracy(model: Classifier, images: np.ndarray, labels: np.ndarray, chunk: int = 256) -> float:
  """The fraction of ``images`` classified right."""
  predicted = np.concatenate([np.asarray(_predict(model, images[i:i + chunk]))
                              for i in range(0, len(images), chunk)])
  return float((predicted == labels).mean())


def stylize_split(aug: StyleAugment, images: np.ndarray, seed: int, chunk: int = 64) -> np.ndarray:
  """``images`` stylized once by ``aug`` (a key per chunk, from the seed), for a test split."""
  key = jax.random.key(seed)
  return np.concatenate([np.asarray(aug(jax.random.fold_in(key, i), jnp.asarray(images[i:i + chunk])))
                         for i in range(0, len(images), chunk)])


def grid(rows: list[tuple[str, np.ndarray]], scale: int = 2) -> Image.Image:
  """Labelled rows of images (each (n, h, w, 3) in [0, 1]) as one picture, pixels ``scale``-fold."""
  n, h, w = rows[0][1].shape[:3]
  gap, label = 2, 96
  out = Image.new("RGB", (label + n * (w * scale + gap), len(rows) * (h * scale + gap)), "white")
  pen = ImageDraw.Draw(out)
  for r, (name, imgs) in enumerate(rows):
    top = r * (h * scale + gap)
    pen.text((4, top + h * scale // 2 - 6), name, fill="black")
    for c, img in enumerate(imgs):
      tile = Image.fromarray(to_uint8(img))
      out.paste(tile.resize((w * scale, h * scale), Image.NEAREST), (label + c * (w * scale + gap), top))
  return out


def run(stylizer, *, steps: int, batch_size: int, image_size: int, seed: int,
        train_images: int = 2048, test_images: int = 512, train_styles: int = 32,
        test_styles: int = 8, p: float = 0.5, shown: int = 8) -> tuple[dict, Image.Image]:
  """Both runs end to end: the results (accuracies, sizes, seconds) and the picture of the
  augmented run's first batch beside the stylized test split."""
  start = time.perf_counter()
  x_train, y_train = draw_shapes(train_images, image_size, seed)
  x_test, y_test = draw_shapes(test_images, image_size, seed + 1)
  aug = StyleAugment(stylizer, bank(stylizer, draw_styles(train_styles, image_size, seed + 2)), p=p)
  held_out = StyleAugment(stylizer, bank(stylizer, draw_styles(test_styles, image_size, seed + 3)),
                          p=1.0, alpha=(1.0, 1.0))
  x_styled = stylize_split(held_out, x_test, seed + 4)
  results = dict(model=stylizer.network, steps=steps, batch_size=batch_size, image_size=image_size,
                 seed=seed, p=p, train_images=train_images, test_images=test_images,
                 train_styles=train_styles, test_styles=test_styles, runs={})
  for name, a in (("plain", None), ("augmented", aug)):
    t = time.perf_counter()
    model = train(x_train, y_train, a, steps, batch_size, seed)
    results["runs"][name] = dict(plain=accuracy(model, x_test, y_test),
                                 stylized=accuracy(model, x_styled, y_test),
                                 train_seconds=round(time.perf_counter() - t, 1))
  key, first, _ = batch(x_train, y_train, 0, batch_size, seed)
  shown = min(shown, batch_size)
  picture = grid([("train batch", first[:shown]),
                  ("augmented", np.asarray(augment(aug, key, jnp.asarray(first)))[:shown]),
                  ("test", x_test[:shown]), ("stylized test", x_styled[:shown])])
  results["seconds"] = round(time.perf_counter() - start, 1)
  return results, picture


def table(results: dict) -> str:
  """The accuracies as a small Markdown table."""
  lines = ["| run | plain test | stylized test |", "|---|---|---|"]
  lines += [f"| {name} | {r['plain']:.3f} | {r['stylized']:.3f} |"
            for name, r in results["runs"].items()]
  return "\n".join(lines)
