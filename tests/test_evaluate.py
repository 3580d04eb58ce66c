"""train.evaluate against PyTorch's losses, its reports and bad input; train.plot.

Golden values: tests/fixtures/evaluate/expected.npz, written by tools/make_evaluate_fixtures.py
(torch 2.13 CPU): every decoder variant's outputs on four pairs and net.py's losses of them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import seeded_weights
from seeded_variants import VARIANTS, save_variant
from adain.models.microast import weights as mw
from train import evaluate, plot

FIXTURES = Path(__file__).parent / "fixtures" / "evaluate"
CONTENTS = ("c_wide", "c_tall")  # the fixture's row and column order
STYLES = ("s_square", "s_wide")


MICROAST = ("microast_run", "microast_published")  # a training workdir, the published layout


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, microast_weights):
  """One evaluation of the four variants, MicroAST (as a training workdir and as its published
  files) and the baselines, on the fixture's pairs plus an unreadable file among the contents."""
  d = tmp_path_factory.mktemp("evaluate")
  (d / "run").mkdir()
  mw.save_exports(d / "run", mw.model_from_state_dicts(mw.state_dicts(microast_weights)), step=1)
  vgg, _ = seeded_weights.save(d)
  content = d / "content"
  shutil.copytree(FIXTURES / "content", content)
  (content / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
  decoders = [f"{name}={save_variant(d / f'{name}.npz', name)}" for name in VARIANTS]
  decoders.append(f"{MICROAST[0]}={d / 'run'}")
  argv = [*(a for spec in decoders for a in ("--decoder", spec)), "--vgg", str(vgg),
          "--microast", f"{MICROAST[1]}={microast_weights}", "--time-sizes", "24,32",
          "--content", str(content), "--style", str(FIXTURES / "style"), "--content-size", "0",
          "--style-size", "0", "--output", str(d / "out"), "--baselines", "--optimize-steps", "3"]
  return d / "out", evaluate.main(argv)


@pytest.mark.slow  # the `evaluated` fixture: four variants and the baselines
def test_losses_match_pytorch(evaluated, capsys):
  out, rc = evaluated
  assert rc == 0
  z = np.load(FIXTURES / "expected.npz")
  np.testing.assert_allclose(z["weights_checksum"], seeded_weights.checksum(
      seeded_weights.vgg_state_dict(),
      *(seeded_weights.variant_decoder_state_dict(v.fusion, v.decoder_norm)
        for v in VARIANTS.values())), rtol=1e-12)
  results = json.loads((out / "results.json").read_text())
  assert list(results["models"]) == [*VARIANTS, *MICROAST, "content", "optimize"]
  a, b = (results["models"][m] for m in MICROAST)  # the same weights, either way in
  assert a["pairs"] == b["pairs"] and a["variant"] == "microast"
  for name in (*VARIANTS, "content"):
    r = results["models"][name]
    assert len(r["pairs"]) == 4
    for p in r["pairs"]:
      i, j = CONTENTS.index(Path(p["content"]).stem), STYLES.index(Path(p["style"]).stem)
      for loss in ("content_loss", "style_loss"):
        np.testing.assert_allclose(p[loss], z[f"{name}_{loss}"][i, j], rtol=1e-3,
                                   err_msg=f"{name} {p['content']} {p['style']} {loss}")
    for loss in ("content_loss", "style_loss"):
      np.testing.assert_allclose(r[loss], z[f"{name}_{loss}"].mean(), rtol=1e-3)
      np.testing.assert_allclose(r[f"{loss}_std"], z[f"{name}_{loss}"].std(), rtol=1e-2)
  assert results["models"]["concat"]["variant"] == "concat"
  assert results["models"]["content"]["variant"] == "baseline"


@pytest.mark.slow  # the `evaluated` fixture
def test_optimize_baseline_lowers_the_training_loss(evaluated):
  out, _ = evaluated
  models = json.loads((out / "results.json").read_text())["models"]
  for start, optimized in zip(models["content"]["pairs"], models["optimize"]["pairs"]):
    assert (optimized["content_loss"] + 10 * optimized["style_loss"]
            < start["content_loss"] + 10 * start["style_loss"])
  assert models["optimize"]["seconds_per_image"] > 0


@pytest.mark.slow  # the `evaluated` fixture
def test_reports_and_skipped_image(evaluated):
  out, _ = evaluated
  results = json.loads((out / "results.json").read_text())
  assert [Path(s["file"]).name for s in results["skipped"]] == ["broken.jpg"]
  assert results["protocol"]["contents"] == 2 and results["protocol"]["styles"] == 2
  table = (out / "results.md").read_text()
  vgg_size = sum(np.size(v) for v in seeded_weights.vgg_state_dict().values())
  microast_size = sum(np.size(a) for sd in mw.state_dicts(out.parent / "run").values()
                      for a in sd.values())
  for name in (*VARIANTS, *MICROAST):
    r = results["models"][name]
    assert list(r["seconds_at"]) == ["24", "32"] and min(r["seconds_at"].values()) > 0
    assert r["parameters"] > vgg_size if name in VARIANTS else r["parameters"] == microast_size
  for name in (*VARIANTS, *MICROAST, "content", "optimize"):
    assert f"| {name} |" in table
    with Image.open(out / f"grid_{name}.jpg") as im:  # (1 + contents) x (1 + styles) cells
      assert im.size == (3 * evaluate.CELL, 3 * evaluate.CELL)
  assert "broken.jpg" in table
  with Image.open(out / "losses.png") as im:
    assert im.size[0] > 200


def test_bad_folders_and_decoders(tmp_path, weights, capsys):
  vgg, dec = weights
  style = str(FIXTURES / "style")
  (tmp_path / "empty").mkdir()
  for folder, problem in ((tmp_path / "missing", "not a folder"), (tmp_path / "empty", "no files")):
    with pytest.raises(SystemExit) as e:
      evaluate.main(["--decoder", str(dec), "--content", str(folder), "--style", style])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"{folder}: {problem}" in err and len(err.strip().splitlines()) == 1
  (tmp_path / "run").mkdir()
  rc = evaluate.main(["--decoder", str(tmp_path / "run"), "--vgg", str(vgg), "--content",
                      str(FIXTURES / "content"), "--style", style])
  err = capsys.readouterr().err.strip()
  assert rc == 1 and err.count("\n") == 0 and "no decoder.npz: not a training workdir" in err


def _metrics(workdir: Path, scale: float) -> Path:
  workdir.mkdir()
  lines = [json.dumps({"step": s, "loss": scale / s, "content_loss": scale / s / 2,
                       "style_loss": scale / s / 20}) for s in range(1, 11)]
  (workdir / "metrics.jsonl").write_text("\n".join(lines) + "\n{\"step\": 11, \"lo")  # torn
  return workdir


def test_plot_curves(tmp_path, capsys):
  a, b = _metrics(tmp_path / "a", 1.0), _metrics(tmp_path / "b", 2.0)
  assert plot.read_metrics(a)[-1]["step"] == 10
  assert plot.main([str(a), f"other={b}", "--output", str(tmp_path / "c.png")]) == 0
  with Image.open(tmp_path / "c.png") as im:
    assert im.size[0] > 500
  assert "2 run(s), up to step 10" in capsys.readouterr().err
  (tmp_path / "nothing").mkdir()
  assert plot.main([str(a), str(tmp_path / "nothing"), "--output", str(tmp_path / "d.png")]) == 1
  err = capsys.readouterr().err.strip()
  assert "nothing/metrics.jsonl: cannot read" in err and err.count("\n") == 0
  assert not (tmp_path / "d.png").exists()
