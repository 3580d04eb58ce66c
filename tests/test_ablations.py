"""`make ablations` end to end at a tiny size: four variants trained (2 steps, 32 px), evaluated
and plotted; then each workdir stylizes through the CLI, and the batch norm decoder's running
statistics are in its export and its checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import seeded_weights
from adain.commands import stylize
from adain.models.adain import weights
from conftest import write_image
from train import trainer
from train.configs.ablations import bn_decoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ("adain", "concat", "bn_decoder", "in_decoder")
ARGS = ("--config.crop_size=32 --config.load_size=32 --config.batch_size=2 --config.log_every=1 "
        "--config.sample_every=100")

pytestmark = pytest.mark.slow  # make ablations: four trainings and an evaluation in subprocesses


@pytest.fixture(scope="module")
def ablations(tmp_path_factory):
  d = tmp_path_factory.mktemp("ablations")
  for kind, seed in (("content", 0), ("style", 10)):
    (d / kind).mkdir()
    for i in range(2):
      write_image(d / kind / f"{kind}{i}.png", 40, 44, seed + i)
  seeded_weights.save(d)
  proc = subprocess.run(
      ["make", "-s", "-o", ".venv/.installed", "ablations", f"PY={sys.executable}",
       f"CONTENT={d / 'content'}", f"STYLE={d / 'style'}", f"VGG={d / 'vgg.npz'}", "STEPS=2",
       f"WORKDIR={d / 'runs'}", f"ARGS={ARGS}", "EVAL_ARGS=--content-size 32 --style-size 32"],
      cwd=ROOT, capture_output=True, text=True,
      env={**os.environ, "JAX_COMPILATION_CACHE_DIR": str(d / "jax-cache")})
  assert proc.returncode == 0, proc.stderr[-3000:]
  return d


def test_make_ablations_trains_evaluates_and_plots(ablations):
  runs = ablations / "runs"
  for name in NAMES:
    sd, meta = weights.load_native(runs / name / "decoder.npz", "decoder")
    assert weights.variant_of(sd).name == name and meta["step"] == "2"
    with open(runs / name / "metrics.jsonl") as f:
      assert [json.loads(line)["step"] for line in f] == [1, 2]
  report = runs / "report"
  assert sorted(os.listdir(report)) == sorted(
      ["results.json", "results.md", "losses.png", "curves.png"] + [f"grid_{n}.jpg" for n in NAMES])
  models = json.loads((report / "results.json").read_text())["models"]
  assert list(models) == list(NAMES)
  assert all(len(m["pairs"]) == 4 and np.isfinite(m["content_loss"]) for m in models.values())


def test_batch_norm_statistics_are_exported_and_checkpointed(ablations):
  workdir = ablations / "runs" / "bn_decoder"
  sd, _ = weights.load_native(workdir / "decoder.npz", "decoder")
  assert not np.allclose(sd["norm1.running_mean"], 0) and not np.allclose(sd["norm1.running_var"], 1)
  cfg = bn_decoder.get_config()
  cfg.update(vgg=str(ablations / "vgg.npz"), content=str(ablations / "content"),
             style=str(ablations / "style"), crop_size=32, load_size=32, batch_size=2)
  model = trainer.build_model(cfg)
  state, _ = trainer.init_state(model, jax.make_mesh((1,), ("data",)))
  ckpt = trainer.Checkpoints(str(workdir), cfg, model)
  step, restored, _ = ckpt.restore(state, {"content": 0, "style": 0})
  ckpt.close()
  assert step == 2
  np.testing.assert_array_equal(restored["batch_stats"]["norms"][0]["mean"], sd["norm1.running_mean"])
  np.testing.assert_array_equal(restored["batch_stats"]["norms"][7]["var"], sd["norm25.running_var"])


@pytest.mark.parametrize("name", NAMES)
def test_each_workdir_stylizes(ablations, name, tmp_path):
  out = tmp_path / "out"
  rc = stylize.main(["--decoder", str(ablations / "runs" / name), "--vgg", str(ablations / "vgg.npz"),
                     "--content-dir", str(ablations / "content"), "--style", str(ablations / "style" / "style0.png"),
                     "--content-size", "0", "--style-size", "0", "--output", str(out), "--ext", "png"])
  assert rc == 0 and sorted(os.listdir(out)) == ["content0_stylized_style0.png",
                                                  "content1_stylized_style0.png"]


def test_concat_workdir_refuses_a_style_code(ablations, tmp_path, capsys):
  from adain.commands import encode_style

  code = tmp_path / "style0.npz"
  assert encode_style.main([str(ablations / "style" / "style0.png"), "--vgg",
                            str(ablations / "vgg.npz"), "--output", str(code)]) == 0
  capsys.readouterr()
  rc = stylize.main(["--decoder", str(ablations / "runs" / "concat"), "--vgg", str(ablations / "vgg.npz"),
                     "--content", str(ablations / "content" / "content0.png"), "--style", str(code),
                     "--output", str(tmp_path / "out")])
  err = capsys.readouterr().err
  assert rc == 1 and f"{code}: a style code cannot drive an Enc-Concat-Dec (concat) decoder" in err


def test_init_decoder_of_another_variant_is_refused(ablations):
  cfg = bn_decoder.get_config()
  cfg.update(vgg=str(ablations / "vgg.npz"), init_decoder=str(ablations / "runs" / "in_decoder"))
  with pytest.raises(trainer.TrainError, match="holds a decoder of variant 'in_decoder', but this "
                     "config trains 'bn_decoder'"):
    trainer.build_model(cfg)
