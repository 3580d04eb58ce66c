"""The training input pipeline: deterministic, resumable, robust to broken files."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from train import data
from train.configs import smoke


def _cfg(content, style, **kw):
  cfg = smoke.get_config()
  cfg.content, cfg.style = str(content), str(style)
  cfg.update(kw)
  return cfg


def _take(cfg, workdir, n, start=(0, 0), process=0, processes=1):
  return list(itertools.islice(data.batches(cfg, str(workdir), *start, process, processes), n))


def _assert_processes_share(cfg, workdir, run):
  """Two processes' slices, joined, are the one-process batches `run` (batch_size 4), also
  after each resumes from its own saved position."""
  shares = [_take(cfg, workdir, 2, process=p, processes=2) for p in (0, 1)]
  shares = [s + _take(cfg, workdir, len(run) - 2, start=(s[1].next_content, s[1].next_style),
                      process=p, processes=2) for p, s in enumerate(shares)]
  for one, a, b in zip(run, *shares):
    assert a.content.shape[0] == b.content.shape[0] == 2
    np.testing.assert_array_equal(one.content, np.concatenate([a.content, b.content]))
    np.testing.assert_array_equal(one.style, np.concatenate([a.style, b.style]))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
  root = tmp_path_factory.mktemp("data")
  data.synthetic_images(str(root / "content" / "nested"), "content", count=7, seed=1)
  data.synthetic_images(str(root / "style"), "style", count=5, seed=1)
  return root / "content", root / "style"


def test_deterministic_and_resumable(folders, tmp_path):
  cfg = _cfg(*folders)
  run = _take(cfg, tmp_path, 6)
  again = _take(cfg, tmp_path, 6)
  for a, b in zip(run, again):
    np.testing.assert_array_equal(a.content, b.content)
    np.testing.assert_array_equal(a.style, b.style)
  assert run[0].content.shape == (2, 32, 32, 3) and run[0].content.dtype == np.uint8
  # Resuming from a saved position reads exactly what the uninterrupted stream read next.
  resumed = _take(cfg, tmp_path, 3, start=(run[2].next_content, run[2].next_style))
  for a, b in zip(run[3:], resumed):
    np.testing.assert_array_equal(a.content, b.content)
    np.testing.assert_array_equal(a.style, b.style)
  cfg4 = _cfg(*folders, batch_size=4)
  _assert_processes_share(cfg4, tmp_path, _take(cfg4, tmp_path, 4))
  other = _take(_cfg(*folders, seed=1), tmp_path, 1)
  assert not np.array_equal(other[0].content, run[0].content)


def test_each_epoch_is_a_new_permutation(tmp_path):
  folder = tmp_path / "solid"
  folder.mkdir()
  for i in range(7):
    Image.fromarray(np.full((40, 50, 3), 10 * i, np.uint8)).save(folder / f"{i}.png")
  batches = _take(_cfg(folder, folder), tmp_path, 7)  # 14 examples: two epochs of 7 files
  ids = [int(c[0, 0, 0]) // 10 for b in batches for c in b.content]
  assert sorted(ids[:7]) == sorted(ids[7:]) == list(range(7))
  assert ids[:7] != ids[7:]


def test_small_images_scaled_up_and_broken_files_skipped(tmp_path):
  content = tmp_path / "content"
  content.mkdir()
  Image.fromarray(np.full((10, 20, 3), 200, np.uint8)).save(content / "tiny.png")
  (content / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
  (content / "notes.txt").write_text("not an image")
  style = tmp_path / "style"
  style.mkdir()
  Image.fromarray(np.full((64, 48, 3), 50, np.uint8)).convert("L").save(style / "gray.png")
  cfg = _cfg(content, style)
  assert [p.rsplit("/", 1)[1] for p in data.list_images(str(content))] == ["broken.jpg",
                                                                            "tiny.png"]
  batches = _take(cfg, tmp_path, 4)
  for b in batches:
    assert (b.content == 200).all() and (b.style == 50).all()
  # 8 crops of the tiny image used 8 epochs of 2 files: 7 or 8 broken reads were dropped.
  assert batches[-1].next_content - 8 in (7, 8)
  assert batches[-1].next_style == 8


def test_missing_data_says_how_to_get_it(folders, tmp_path):
  with pytest.raises(data.DataError, match="painter-by-numbers"):
    _take(_cfg(folders[0], tmp_path / "wikiart"), tmp_path, 1)
  with pytest.raises(data.DataError, match="no images"):
    _take(_cfg(tmp_path, tmp_path), tmp_path, 1)
  with pytest.raises(data.DataError, match="tfds build coco/2017"):
    _take(_cfg("tfds:coco/2017", tmp_path, tfds_data_dir=str(tmp_path / "tfds")), tmp_path, 1)


@pytest.mark.slow  # imports TensorFlow (tfds)
def test_tfds_stream_is_deterministic_and_resumable(tmp_path):
  pytest.importorskip("importlib_resources")  # tfds needs it to build (not to read) datasets
  import tensorflow_datasets as tfds

  images = [(i, {"image": np.full((40, 36, 3), 40 * i, np.uint8)}) for i in range(6)]
  tfds.dataset_builders.store_as_tfds_dataset(
      name="adain_tiny_images", version="1.0.0", data_dir=str(tmp_path / "tfds"),
      features=tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(None, None, 3))}),
      split_datasets={"train": images})
  cfg = _cfg("tfds:adain_tiny_images", "tfds:adain_tiny_images:train[:3]",
             tfds_data_dir=str(tmp_path / "tfds"), shuffle_buffer=4)
  run = _take(cfg, tmp_path, 6)
  ids = [int(c[0, 0, 0]) // 40 for b in run for c in b.content]
  assert sorted(ids[:6]) == sorted(ids[6:]) == list(range(6)) and ids[:6] != ids[6:]
  style_ids = [int(c[0, 0, 0]) // 40 for b in run for c in b.style]
  assert len(set(style_ids[:3])) == 3 and set(style_ids) == set(style_ids[:3])  # a 3-image slice
  resumed = _take(cfg, tmp_path, 2, start=(run[3].next_content, run[3].next_style))
  for a, b in zip(run[4:], resumed):
    np.testing.assert_array_equal(a.content, b.content)
    np.testing.assert_array_equal(a.style, b.style)
  cfg.batch_size = 4
  _assert_processes_share(cfg, tmp_path, _take(cfg, tmp_path, 3))
