"""adain.runtime: the commands' process settings, and a library that changes no process state."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from adain import runtime

LIBRARY = ("adain", "adain.models.ops", "adain.models.adain.network", "adain.models.adain.codes", "adain.models.adain.architecture", "adain.models.losses",
           "adain.inference.stylizer", "adain.inference.tiling", "adain.inference.programs", "adain.inference.color", "adain.pipelines.video",
           "adain.models.adain.weights", "adain.hub.download", "adain.media.images", "adain.media.video_io",
           "adain.app.studio", "adain.export.onnx_graph", "adain.stylize", "adain.encode_style",
           "adain.stylize_dataset", "adain.bench")


def _fresh(code: str, tmp_path, **env) -> subprocess.CompletedProcess:
  """code in a fresh interpreter whose home, cache and working folder are empty folders."""
  for d in ("home", "adain", "cwd"):
    (tmp_path / d).mkdir(exist_ok=True)
  base = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "GRADIO_ANALYTICS_ENABLED")}
  return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                        cwd=tmp_path / "cwd", env={**base, "HOME": str(tmp_path / "home"),
                                                   "ADAIN_HOME": str(tmp_path / "adain"), **env})


def _files(tmp_path) -> list[str]:
  return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())


def test_importing_the_library_changes_no_environment_variable_and_writes_no_file(tmp_path):
  # JAX sets TF_CPP_MIN_LOG_LEVEL and TPU_SKIP_MDS_QUERY when imported: what adain's
  # dependencies do at import is theirs, so they are imported before the snapshot.
  code = (f"import importlib, json, os\nimport jax, flax.nnx, numpy, PIL.Image, tqdm\nbefore = dict(os.environ)\n"
          f"for m in {LIBRARY!r}: importlib.import_module(m)\n"
          "changed = {k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)}\n"
          "print(json.dumps(sorted(changed)))\n")
  done = _fresh(code, tmp_path, PYTHONDONTWRITEBYTECODE="1")
  assert done.returncode == 0, done.stderr[-2000:]
  assert json.loads(done.stdout) == []
  assert _files(tmp_path) == []


def test_a_stylizer_with_programs_off_writes_no_file(tmp_path):
  code = ("import numpy as np\nfrom adain.models.adain.network import AdaIN\nfrom adain.inference.stylizer import Stylizer\n"
          "img = np.linspace(0, 1, 32 * 40 * 3, dtype=np.float32).reshape(32, 40, 3)\n"
          "s = Stylizer(AdaIN())\nprint(s.stylize(img, img).shape)\n")
  done = _fresh(code, tmp_path, ADAIN_PROGRAMS="0", PYTHONDONTWRITEBYTECODE="1")
  assert done.returncode == 0, done.stderr[-2000:]
  assert done.stdout.strip() == "(32, 40, 3)"
  assert _files(tmp_path) == []
  done = _fresh(code, tmp_path, PYTHONDONTWRITEBYTECODE="1")  # the default saves them
  assert done.returncode == 0, done.stderr[-2000:]
  saved = [f.split("/") for f in _files(tmp_path)]
  assert sorted(f"{a}/{b}/{c.split('-')[0]}" for a, b, c in saved) == [
      "adain/programs/decode", "adain/programs/encode_content", "adain/programs/encode_style"]


CONV = ("import jax, jax.numpy as jnp\nx = jnp.ones((1, 8, 8, 3))\nk = jnp.ones((3, 3, 3, 4))\n"
        "y = jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))\n"
        "print(float(y.sum()))\n")


def test_the_installed_jaxlib_accepts_the_xla_flag(tmp_path):
  done = _fresh(CONV, tmp_path, XLA_FLAGS=runtime.XLA_CPU_FLAG)
  assert done.returncode == 0 and float(done.stdout) > 0, done.stderr[-2000:]
  # A flag XLA does not know stops the process: what a renamed flag would do to every command.
  done = _fresh(CONV, tmp_path, XLA_FLAGS="--xla_cpu_no_such_flag_for_adain=1")
  assert done.returncode != 0 and "xla_cpu_no_such_flag_for_adain" in done.stderr


def test_set_up_adds_the_flag_and_restarts_unless_told_not_to(monkeypatch):
  restarts = []
  monkeypatch.setattr(runtime, "reexec_with_huge_pages", restarts.append)
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  monkeypatch.delenv("ADAIN_XLA_FLAG", raising=False)
  monkeypatch.delenv("ADAIN_HUGE_PAGES", raising=False)
  runtime.set_up("adain.stylize")
  assert os.environ["XLA_FLAGS"] == runtime.XLA_CPU_FLAG and restarts == ["adain.stylize"]
  runtime.set_up("adain.stylize", huge_pages=False)
  assert os.environ["XLA_FLAGS"] == runtime.XLA_CPU_FLAG and restarts == ["adain.stylize"]
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=-reduce")  # the user's wins
  monkeypatch.setenv("ADAIN_HUGE_PAGES", "0")
  runtime.set_up("train")
  assert os.environ["XLA_FLAGS"] == "--xla_cpu_experimental_ynn_fusion_type=-reduce"
  assert restarts == ["adain.stylize"]
  monkeypatch.delenv("XLA_FLAGS")
  monkeypatch.setenv("ADAIN_XLA_FLAG", "0")
  runtime.set_up("train", huge_pages=False)
  assert "XLA_FLAGS" not in os.environ


@pytest.mark.parametrize("module", ["adain.stylize", "adain.encode_style", "adain.stylize_dataset",
                                    "adain.bench", "adain.app", "adain.export", "adain.export.bench",
                                    "train", "train.bench"])
def test_every_command_sets_up_its_process_first(module, tmp_path):
  """python -m X calls runtime.set_up (here replaced by a stand-in that stops the run) before
  anything else; only the stylizing commands ask for the huge-pages restart."""
  code = ("import runpy, sys\nfrom adain import runtime\n"
          "def set_up(module, huge_pages=True):\n  print(module, huge_pages)\n  sys.exit(0)\n"
          f"runtime.set_up = set_up\nsys.argv = [{module!r}]\nrunpy.run_module({module!r}, run_name='__main__')\n")
  done = _fresh(code, tmp_path)
  assert done.returncode == 0, done.stderr[-2000:]
  # adain.stylize restarts for several images only: none here (the demo pair).
  assert done.stdout.split() == [module, str(module not in ("adain.stylize", "adain.export"))]
