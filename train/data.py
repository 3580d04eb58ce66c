"""Input pipeline: infinite shuffled streams of random crops, resumable from a stream position.

Each stream (content, style) is a sequence of examples numbered g = 0, 1, 2, ... that depends
only on the seed: for a folder, example g is file ``index_shuffle(g % N)`` of a fresh
permutation per epoch ``g // N``; for tfds, the split is read in a seeded file and buffer order
per epoch. Every random choice about example g (its crop) is a stateless function of
(seed, stream, g), so no generator state needs saving: the checkpoint stores the position of the
next example to read, and a resumed run reads exactly what an uninterrupted one would.

Files that cannot be decoded are dropped (``ignore_errors``) after their example number is
taken, so positions stay exact and ``skipped = examples read - examples used``. Batches are
built on the host before they are sharded, so they do not depend on the number of devices.
With P processes and a global batch of P * b, process p takes examples [p * b, (p + 1) * b) of
every P * b: the processes' slices, joined in process order, are the one-process batch. A
stream position counts the examples of this process's share (the same thing with one process).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

from adain.errors import AdainError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
_STREAM_IDS = {"content": 0, "style": 1}
_END = np.iinfo(np.int64).max


class DataError(AdainError):
  """Training data that is missing or unusable; the message says how to get it."""


@dataclasses.dataclass(frozen=True)
class Batch:
  """One host's share of a step's batch (uint8 NHWC) and where each stream goes on from."""

  content: np.ndarray
  style: np.ndarray
  next_content: int
  next_style: int


def _how_to_get(spec: str, which: str) -> str:
  if spec.startswith("tfds:"):
    name = spec[5:].split(":")[0]
    return (f"prepare it once with `.venv/bin/tfds build {name}` (downloads the data; add "
            f"--data_dir DIR and pass --config.tfds_data_dir=DIR to keep it elsewhere), or pass "
            f"an image folder instead")
  if which == "style":
    return ("download WikiArt, e.g. train.zip of Kaggle's painter-by-numbers "
            "(https://www.kaggle.com/c/painter-by-numbers/data), and unzip it there "
            f"(`mkdir -p {spec} && unzip train.zip -d {spec}`), or pass any folder of images "
            "with STYLE=DIR (make) or --config.style=DIR")
  return ("put images there (MS-COCO: unzip http://images.cocodataset.org/zips/train2014.zip), "
          "or pass any folder of images with CONTENT=DIR (make) or --config.content=DIR")


def list_images(folder: str) -> list[str]:
  """Image files under ``folder``, recursively, in a fixed (sorted) order."""
  found = []
  for root, dirs, files in os.walk(folder, followlinks=True):
    dirs.sort()
    found += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
  return found


def _decode(encoded: tf.Tensor, load_size: int) -> tf.Tensor:
  """uint8 RGB image; large JPEGs are decoded at a reduced scale (still >= load_size)."""

  def jpeg():
    shape = tf.image.extract_jpeg_shape(encoded)
    short = tf.minimum(shape[0], shape[1])
    branches = [lambda r=r: tf.io.decode_jpeg(encoded, channels=3, ratio=r) for r in (1, 2, 4, 8)]
    fits = tf.stack([short // r >= load_size for r in (2, 4, 8)])
    return tf.switch_case(tf.reduce_sum(tf.cast(fits, tf.int32)), branches)

  def other():
    return tf.io.decode_image(encoded, channels=3, expand_animations=False)

  return tf.cond(tf.io.is_jpeg(encoded), jpeg, other)


def resize_and_crop(image: tf.Tensor, seed: tf.Tensor, load_size: int, crop_size: int):
  """Shorter side to load_size (aspect ratio kept, so small images grow), then a random crop."""
  hw = tf.cast(tf.shape(image)[:2], tf.float32)
  scale = load_size / tf.reduce_min(hw)
  new_hw = tf.maximum(tf.cast(tf.round(hw * scale), tf.int32), load_size)
  image = tf.image.resize(image, new_hw, method="bilinear", antialias=True)
  image = tf.image.stateless_random_crop(image, [crop_size, crop_size, 3], seed=seed)
  return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)


def _key(seed: int, sid: int, purpose: int, counter) -> tf.Tensor:
  """A stateless-RNG seed pair, distinct per (seed, stream, purpose) and per counter value."""
  return tf.stack([tf.constant(seed * 4 + sid * 2 + purpose, tf.int64), counter])


@dataclasses.dataclass(frozen=True)
class Share:
  """Process ``index`` of ``count``, each reading ``batch`` consecutive examples of every
  ``count * batch``: local example i of the share is global example ``global_(i)``."""

  index: int = 0
  count: int = 1
  batch: int = 1

  def global_(self, i):
    return (i // self.batch) * (self.batch * self.count) + self.index * self.batch + i % self.batch

  def owns(self, g):
    return (g % (self.batch * self.count)) // self.batch == self.index

  def local(self, g):
    return (g // (self.batch * self.count)) * self.batch + g % self.batch


def _folder_examples(files: Sequence[str], seed: int, sid: int, start: int, share: Share):
  paths = tf.constant(list(files))
  n = len(files)

  def read(i):
    g = share.global_(i)
    index = tf.random.experimental.index_shuffle(g % n, _key(seed, sid, 0, g // n),
                                                 tf.constant(n - 1, tf.int64))
    return i, g, tf.io.read_file(paths[index])

  return tf.data.Dataset.range(start, _END).map(read)


def _parse_tfds(spec: str) -> tuple[str, str]:
  name, _, split = spec[len("tfds:"):].partition(":")
  return name, split or "train"


def _tfds_examples(spec: str, which: str, data_dir: str, shuffle_buffer: int, seed: int, sid: int,
                   start: int, share: Share):
  import tensorflow_datasets as tfds  # slow to import; only tfds inputs need it

  name, split = _parse_tfds(spec)
  try:
    builder = tfds.builder(name, data_dir=data_dir or None)
  except Exception as e:  # tfds raises several types for unknown names
    raise DataError(spec, f"no such tfds dataset ({e}). Pass a folder or a tfds name") from None
  if not builder.is_prepared():
    raise DataError(spec, f"{which} data is not prepared in {builder.data_dir}: "
                    + _how_to_get(spec, which))
  keys = [k for k, f in builder.info.features.items() if isinstance(f, tfds.features.Image)]
  if not keys:
    raise DataError(spec, "this dataset has no image feature")
  n = builder.info.splits[split].num_examples

  def epoch(e: int) -> tf.data.Dataset:
    ds = builder.as_dataset(
        split=split, shuffle_files=True, decoders={keys[0]: tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(shuffle_seed=seed * 1_000_003 + e * 2 + sid,
                                    try_autocache=False))
    return ds.map(lambda ex: ex[keys[0]]).shuffle(shuffle_buffer, seed=seed * 7 + e * 2 + sid)

  first = share.global_(start)

  def generate():
    e, skip = divmod(first, n)
    while True:
      yield from epoch(e).skip(skip).as_numpy_iterator()
      e, skip = e + 1, 0

  ds = tf.data.Dataset.from_generator(generate, output_signature=tf.TensorSpec((), tf.string))
  ds = ds.enumerate(first).filter(lambda g, _: share.owns(g))
  return ds.map(lambda g, encoded: (share.local(g), g, encoded))


def synthetic_images(folder: str, kind: str, count: int = 24, seed: int = 0) -> None:
  """Writes ``count`` procedural PNGs of assorted sizes (some smaller than a 64 px crop).

  Content images are smooth gradients with shapes; style images are coloured stripes and
  checks with noise. They let smoke runs and tests train without any download.
  """
  from PIL import Image

  os.makedirs(folder, exist_ok=True)
  rng = np.random.default_rng([seed, _STREAM_IDS[kind]])
  for i in range(count):
    h, w = (int(v) for v in rng.integers(40, 140, 2))
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = rng.uniform(0, 1, (2, 3))
    if kind == "content":
      t = (x * rng.uniform(-1, 1) + y * rng.uniform(-1, 1)) / (h + w)
      img = c0 + (c1 - c0) * (t - t.min())[..., None] / max(np.ptp(t), 1e-6)
      for _ in range(3):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(5, 30)
        img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0, 1, 3)
    else:
      period, angle = rng.uniform(4, 20), rng.uniform(0, np.pi)
      phase = (x * np.cos(angle) + y * np.sin(angle)) / period
      mask = (np.floor(phase) % 2 == 0) ^ (rng.random() < 0.5) * (np.floor(y / period) % 2 == 0)
      img = np.where(mask[..., None], c0, c1) + rng.normal(0, 0.08, (h, w, 3))
    img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    Image.fromarray(img).save(os.path.join(folder, f"{kind}_{i:03d}.png"))


def _check_readable(files: Sequence[str], spec: str) -> None:
  """Fails fast on a folder whose first images are all unreadable (it would never yield)."""
  for path in files[:16]:
    try:
      _decode(tf.io.read_file(path), 1)
      return
    except (tf.errors.OpError, ValueError):
      continue
  raise DataError(spec, f"none of the first {min(16, len(files))} images could be decoded")


def stream(spec: str, which: str, *, workdir: str, load_size: int, crop_size: int, seed: int,
           start: int, share: Share, tfds_data_dir: str = "",
           shuffle_buffer: int = 1024) -> tf.data.Dataset:
  """Batches of (local example numbers, uint8 crops) of this process's share of one stream,
  from its local example ``start`` on."""
  sid = _STREAM_IDS[which]
  if spec.startswith("tfds:"):
    ds = _tfds_examples(spec, which, tfds_data_dir, shuffle_buffer, seed, sid, start, share)
  else:
    folder = spec
    if spec.startswith("synthetic:"):
      folder = os.path.join(workdir, "synthetic", spec.split(":", 1)[1])
      if not os.path.isdir(folder):  # drawn aside and renamed: processes may race to draw it
        aside = f"{folder}.tmp-{os.getpid()}"
        synthetic_images(aside, which, seed=seed)
        try:
          os.rename(aside, folder)
        except OSError:  # another process's copy is in place (the same images)
          shutil.rmtree(aside)
    if not os.path.isdir(folder):
      raise DataError(spec, f"{which} folder not found: " + _how_to_get(spec, which))
    files = list_images(folder)
    if not files:
      raise DataError(spec, f"no images ({', '.join(IMAGE_EXTENSIONS)}) in this {which} "
                      "folder: " + _how_to_get(spec, which))
    _check_readable(files, spec)
    ds = _folder_examples(files, seed, sid, start, share)

  def load(i, g, encoded):
    crop_seed = _key(seed, sid, 1, g)
    return i, resize_and_crop(_decode(encoded, load_size), crop_seed, load_size, crop_size)

  ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.ignore_errors(log_warning=True)
  return ds.batch(share.batch, drop_remainder=True)


def batches(cfg, workdir: str, next_content: int, next_style: int, process: int = 0,
            processes: int = 1) -> Iterator[Batch]:
  """This process's batches of both streams, each from its saved position (checked at once)."""
  local_batch = cfg.batch_size // processes
  common = dict(workdir=workdir, load_size=cfg.load_size, crop_size=cfg.crop_size,
                seed=cfg.seed, share=Share(process, processes, local_batch),
                tfds_data_dir=cfg.tfds_data_dir, shuffle_buffer=cfg.shuffle_buffer)
  content = stream(cfg.content, "content", start=next_content, **common)
  style = stream(cfg.style, "style", start=next_style, **common)
  ds = tf.data.Dataset.zip(content, style).prefetch(2)
  return (Batch(c, s, int(ic[-1]) + 1, int(is_[-1]) + 1)
          for (ic, c), (is_, s) in ds.as_numpy_iterator())
