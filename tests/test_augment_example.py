"""examples/style_augment at tiny sizes on the seeded MicroAST weights: the drawn data repeat per
seed with balanced classes, the train step stylizes inside its jit (chosen images change, the
others stay bit for bit), and the command writes sane results and its picture. The two tests that
compile MicroAST into a train step take 20-30 s each on 2 busy cores: slow."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from PIL import Image

from adain.augment import StyleAugment
from adain.inference.stylizer import Stylizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # examples/ is run from a checkout
from examples.style_augment import example, main  # noqa: E402


@pytest.fixture(scope="module")
def stylizer(microast_weights):
  return Stylizer.from_files(model="microast", weights=microast_weights)


@pytest.fixture(scope="module")
def aug(stylizer):
  return StyleAugment(stylizer, example.bank(stylizer, example.draw_styles(3, 32, 0)), p=0.5)


def test_drawn_data_repeat_per_seed_with_balanced_classes():
  x, y = example.draw_shapes(24, 32, 5)
  x2, y2 = example.draw_shapes(24, 32, 5)
  np.testing.assert_array_equal(x, x2)
  np.testing.assert_array_equal(y, y2)
  assert x.shape == (24, 32, 32, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
  assert np.bincount(y).tolist() == [6] * len(example.CLASSES)
  assert not np.array_equal(y, np.sort(y))  # shuffled, not in class order
  assert not np.array_equal(x, example.draw_shapes(24, 32, 6)[0])
  s = example.draw_styles(8, 32, 1)
  np.testing.assert_array_equal(s, example.draw_styles(8, 32, 1))
  assert s.shape == (8, 32, 32, 3) and 0 <= s.min() and s.max() <= 1
  assert all(img.std() > 0.05 for img in s)  # textures, not flat colours


def test_shapes_are_told_apart_by_their_masks():
  """Each class's mask at the same place and size is its own: a circle is no square."""
  x, y = example._grid(64)
  masks = [example._shape_mask(k, x, y, 0.5, 0.5, 0.3, 0.0) for k in range(len(example.CLASSES))]
  assert all(m.sum() > 200 for m in masks)
  assert all((a != b).sum() > 50 for i, a in enumerate(masks) for b in masks[i + 1:])


@pytest.mark.slow
def test_the_train_step_stylizes_chosen_images_inside_its_jit(aug):
  x, y = example.draw_shapes(8, 32, 0)
  key, images, labels = example.batch(x, y, 0, 6, seed=0)
  np.testing.assert_array_equal(images, example.batch(x, y, 0, 6, seed=0)[1])  # same for both runs
  applied = np.asarray(aug.sample(key, len(images)).applied)
  assert 0 < applied.sum() < len(images)  # this key stylizes some and keeps some
  out = np.asarray(example.augment(aug, key, jnp.asarray(images)))
  for i in range(len(images)):
    assert np.array_equal(out[i], images[i]) != applied[i], i
  np.testing.assert_array_equal(np.asarray(example.augment(None, key, images)), images)

  def one_step(a):
    model = example.Classifier(nnx.Rngs(0))
    example.train_step(model, nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param), a, key,
                       jnp.asarray(images), jnp.asarray(labels))
    return jax.tree.leaves(nnx.state(model, nnx.Param))

  # The same start and batch: only the pixels stylized in the step can tell the two apart.
  assert not all(np.allclose(a, b) for a, b in zip(one_step(None), one_step(aug)))


def test_grid_places_each_image():
  rows = [(name, np.random.default_rng(i).random((3, 8, 8, 3))) for i, name in enumerate("ab")]
  pic = np.asarray(example.grid(rows, scale=2))
  assert pic.shape == (2 * (16 + 2), 96 + 3 * (16 + 2), 3)
  cell = pic[18:34, 96 + 18:96 + 34]  # row 1, column 1
  np.testing.assert_array_equal(cell[::2, ::2], (rows[1][1][1] * 255).round().astype(np.uint8))


@pytest.mark.slow
def test_the_command_writes_results_and_picture(microast_weights, tmp_path, capsys, monkeypatch):
  small = dict(train_images=16, test_images=12, train_styles=3, test_styles=2, shown=4)
  run = example.run
  monkeypatch.setattr(example, "run", lambda *a, **k: run(*a, **k, **small))
  assert main.main(["--weights", str(microast_weights), "--steps", "2", "--batch-size", "6",
                    "--image-size", "32", "--output", str(tmp_path)]) == 0
  results = json.loads((tmp_path / "results.json").read_text())
  assert results["steps"] == 2 and results["model"] == "microast" and results["test_images"] == 12
  assert set(results["runs"]) == {"plain", "augmented"}
  for r in results["runs"].values():
    for split in ("plain", "stylized"):
      assert 0 <= r[split] <= 1 and abs(r[split] * 12 - round(r[split] * 12)) < 1e-9  # of 12
  with Image.open(tmp_path / "augmented.png") as pic:
    assert pic.size == (96 + 4 * (64 + 2), 4 * (64 + 2))
  out = capsys.readouterr().out
  assert "| plain |" in out and "| augmented |" in out
