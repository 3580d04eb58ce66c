"""python -m adain.stylize_dataset: layout, style choice, parity with adain.stylize, shards, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

import seeded_weights
from adain.commands import stylize, stylize_dataset
from adain.models.adain.architecture import Variant
from adain.pipelines import datasets
from adain.pipelines.datasets import choose_styles, shard_of
from adain.models.adain.weights import save_native, variant_meta
from conftest import write_image
from dataset_tree import STYLES, files, flags, make_tree, manifest


@pytest.fixture
def tree(tmp_path):
  return make_tree(tmp_path)


CONTENTS = ["cats/B.JPG", "cats/a.png", "cats/c.jpeg", "dogs/broken.jpg", "dogs/d.PNG", "dogs/e.jpg",
            "dogs/puppies/f.png"]


def expected_outputs(num_styles, seed=0, ext=None, skip=("dogs/broken.jpg",)):
  out = {}
  for rel in CONTENTS:
    for k in choose_styles(seed, Path(rel), len(STYLES), num_styles):
      p = Path(rel)
      suffix = f".{ext}" if ext else p.suffix
      out[(p.parent / f"{p.stem}-stylized-{Path(STYLES[k]).stem}{suffix}").as_posix()] = (rel, STYLES[k])
  return {k: v for k, v in out.items() if v[0] not in skip}


def pixels(path):
  return np.asarray(Image.open(path))


@pytest.mark.slow  # two whole runs over the tree, several sizes and batches
def test_layout_names_manifest_and_a_broken_file(tree, weights, tmp_path, capsys):
  out = tmp_path / "out"
  assert stylize_dataset.main(flags(tree, out, weights, "--num-styles", "2", "--batch-size", "3")) == 1
  err = capsys.readouterr().err
  broken = tree[0] / "dogs" / "broken.jpg"
  errors = [line for line in err.splitlines() if line.startswith("error")]
  assert len(errors) == 1 and errors[0].startswith(f"error: {broken}: corrupt JPEG")
  assert "wrote 12 image(s)" in err and "skipped 0 already done, 2 failed" in err
  want = expected_outputs(2)
  assert files(out) == sorted([*want, "manifest.jsonl"])
  for rel, (content, _) in want.items():
    img = Image.open(out / rel)
    assert img.format == ("PNG" if rel.lower().endswith(".png") else "JPEG")
    assert img.mode == "RGB" and img.size == Image.open(tree[0] / content).size
  for rel in CONTENTS:  # two different styles per image
    assert len({s for c, s in want.values() if c == rel}) == (0 if "broken" in rel else 2)
  rows = manifest(out / "manifest.jsonl")
  ok = {r["output"]: (r["content"], r["style"]) for r in rows if r["status"] == "ok"}
  assert ok == want and len(rows) == 14
  bad = [r for r in rows if r["status"] == "failed"]
  assert {r["content"] for r in bad} == {"dogs/broken.jpg"} and all(str(broken) in r["error"] for r in bad)

  # A second run skips everything and rewrites the manifest with the finished outputs only.
  assert stylize_dataset.main(flags(tree, out, weights, "--num-styles", "2")) == 1
  assert "wrote 0 image(s)" in capsys.readouterr().err
  assert files(out) == sorted([*want, "manifest.jsonl"])
  assert sorted(map(json.dumps, manifest(out / "manifest.jsonl"))) == sorted(map(json.dumps, rows))


def test_style_choice_is_a_pure_function_of_seed_and_path():
  paths = [Path(f"class{i % 3}/img{i}.JPEG") for i in range(200)]
  picks = [choose_styles(7, p, 10, 3) for p in paths]
  assert picks == [choose_styles(7, p, 10, 3) for p in reversed(paths)][::-1]
  assert all(len(set(k)) == 3 and all(0 <= s < 10 for s in k) for k in picks)
  assert picks != [choose_styles(8, p, 10, 3) for p in paths]
  counts = np.bincount(np.concatenate(picks), minlength=10)
  assert counts.min() > 30  # every style used, roughly evenly (600 draws over 10)
  assert sorted(choose_styles(1, paths[0], 5, 5)) == list(range(5))
  shards = [shard_of(p, 4) for p in paths]
  assert shards == [shard_of(p, 4) for p in paths] and set(shards) == {0, 1, 2, 3}


def test_same_pixels_as_the_stylize_command(tree, weights, tmp_path):
  """PNG outputs equal to python -m adain.stylize's for each pair, with alpha and grey contents;
  and a seed changes the choice."""
  out = tmp_path / "out"
  args = flags(tree, out, weights, "--num-styles", "2", "--ext", "png", "--alpha", "0.7")
  assert stylize_dataset.main(args) == 1
  want = expected_outputs(2, ext="png")
  assert files(out) == sorted([*want, "manifest.jsonl"])
  ref = tmp_path / "ref"
  for rel, (content, style) in want.items():
    assert stylize.main(["--content", str(tree[0] / content), "--style", str(tree[1] / style),
                         "--content-size", "0", "--style-size", "32", "--alpha", "0.7", "--ext", "png",
                         "--output", str(ref), "--vgg", str(weights[0]), "--decoder", str(weights[1])]) == 0
    got, expect = pixels(out / rel), pixels(ref / f"{Path(content).stem}_stylized_{Path(style).stem}.png")
    assert got.shape == expect.shape and np.array_equal(got, expect), rel
  other = tmp_path / "seed1"
  assert stylize_dataset.main(flags(tree, other, weights, "--num-styles", "2", "--seed", "1", "--ext", "png")) == 1
  assert files(other) == sorted([*expected_outputs(2, seed=1, ext="png"), "manifest.jsonl"]) != files(out)


def test_two_shards_make_the_unsharded_run(tree, weights, tmp_path):
  whole, sharded = tmp_path / "whole", tmp_path / "sharded"
  assert stylize_dataset.main(flags(tree, whole, weights, "--crop", "32")) == 1
  rcs = [stylize_dataset.main(flags(tree, sharded, weights, "--crop", "32", "--shard", f"{i}/2")) for i in (0, 1)]
  assert sorted(rcs) == [0, 1]  # the broken file is in one of them
  images = [f for f in files(whole) if f != "manifest.jsonl"]
  assert images and images == [f for f in files(sharded) if not f.startswith("manifest")]
  assert all(Image.open(whole / f).size == (32, 32) for f in images)
  for f in images:
    assert (whole / f).read_bytes() == (sharded / f).read_bytes(), f
  parts = [manifest(sharded / f"manifest-{i}-of-2.jsonl") for i in (0, 1)]
  assert all(parts)  # both shards had work
  assert sorted(map(json.dumps, parts[0] + parts[1])) == sorted(map(json.dumps, manifest(whole / "manifest.jsonl")))


@pytest.mark.slow  # a run in a subprocess, killed and resumed
def test_killed_run_resumes_to_exactly_the_full_set(tree, weights, tmp_path):
  c, _ = tree
  for i in range(8):  # more work, so that the kill lands mid-run
    write_image(c / "cats" / f"x{i}.png", 40, 48, 20 + i)
  ref, out = tmp_path / "ref", tmp_path / "out"
  assert stylize_dataset.main(flags(tree, ref, weights, "--num-styles", "2", "--ext", "png")) == 1
  want = [f for f in files(ref) if f != "manifest.jsonl"]
  assert len(want) == 2 * 14

  cmd = [sys.executable, "-m", "adain.stylize_dataset",
         *flags(tree, out, weights, "--num-styles", "2", "--ext", "png", "--batch-size", "1", "--workers", "1")]
  proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 300
  while not any(f.endswith(".png") for f in files(out) if out.exists()) and proc.poll() is None:
    assert time.monotonic() < deadline
    time.sleep(0.005)
  os.kill(proc.pid, signal.SIGKILL)
  assert proc.wait() == -signal.SIGKILL
  partial = [f for f in files(out) if not f.startswith("manifest")]
  finished = [f for f in partial if not Path(f).name.startswith(".")]
  assert 0 < len(finished) < len(want), "the kill did not land mid-run"
  for f in finished:  # whatever is at a final name is a whole image
    assert np.array_equal(pixels(out / f), pixels(ref / f))
  # A temporary file of a killed write, and one of another process's output, which stays.
  ours = Path(want[0])
  (out / ours.parent / f".{ours.name}.0123456789ab.tmp").write_bytes(b"partial")
  (out / "cats" / ".other.png.0123456789ab.tmp").write_bytes(b"someone else's")

  assert subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode == 1
  assert files(out) == sorted([*want, "cats/.other.png.0123456789ab.tmp", "manifest.jsonl"])
  for f in want:
    assert np.array_equal(pixels(out / f), pixels(ref / f)), f
  rows = manifest(out / "manifest.jsonl")
  assert sorted(r["output"] for r in rows if r["status"] == "ok") == want
  assert len(rows) == len(want) + 2


def test_flags_and_usage_errors(tree, weights, tmp_path, capsys):
  p = stylize_dataset.build_parser()
  a = p.parse_args(["--content-dir", "c", "--style-dir", "s"])
  assert (a.output_dir, a.num_styles, a.alpha, a.extensions, a.content_size, a.style_size, a.crop) == \
      ("output", 1, 1.0, ["png", "jpeg", "jpg"], 0, 512, 0)
  for bad in (["--shard", "2/2"], ["--shard", "x"], ["--num-styles", "4"], ["--num-styles", "0"]):
    with pytest.raises(SystemExit) as e:
      stylize_dataset.main(flags(tree, tmp_path / "o", weights, *bad))
    assert e.value.code == 2
  err = capsys.readouterr().err
  assert "need 0 <= I < N" in err and "more than the 3 style images" in err
  with pytest.raises(SystemExit):
    stylize_dataset.main(flags(tree, tmp_path / "o", weights, "--extensions", "bmp"))
  assert "no images with extensions bmp" in capsys.readouterr().err
  concat = tmp_path / "concat.npz"
  save_native(concat, seeded_weights.variant_decoder_state_dict("concat"), "decoder",
              **variant_meta(Variant("concat")))
  assert stylize_dataset.main(flags(tree, tmp_path / "o", (weights[0], concat))) == 1
  assert f"error: {concat}: an Enc-Concat-Dec (concat) decoder needs each style image" in capsys.readouterr().err


class _ShortOfMemory:
  """A stylizer whose device fits only one image at a time, tiled at OOM_TILE."""

  def __init__(self):
    self.calls = []

  def generate(self, contents, style, alpha, tile=None):
    self.calls.append((len(contents), tile))
    if len(contents) > 1 or tile != datasets.OOM_TILE:
      raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: out of memory while trying to allocate")
    return contents * alpha


def test_out_of_memory_splits_the_batch_then_tiles():
  from adain.models.adain.codes import StyleCode

  s = _ShortOfMemory()
  contents = np.random.default_rng(0).random((3, 20, 20, 3)).astype(np.float32)
  style = StyleCode(np.zeros((3, 512)), np.ones((3, 512)))
  np.testing.assert_array_equal(datasets.stylize_batch(s, contents, style, 0.5, None), contents * 0.5)
  assert (3, None) in s.calls and s.calls.count((1, datasets.OOM_TILE)) == 3
