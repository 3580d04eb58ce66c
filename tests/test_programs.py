"""adain.programs: compiled programs saved on disk, read back by a later process without tracing."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import jax
import numpy as np
import pytest

from adain import programs
from conftest import write_image


def _python(code: str, home, **env) -> str:
  """Runs code in a fresh interpreter with its own ADAIN_HOME; returns its stdout."""
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                        env={**os.environ, "ADAIN_HOME": str(home), **env})
  assert done.returncode == 0, done.stderr[-3000:]
  return done.stdout


STYLIZE = """
import sys
from adain import stylize
assert stylize.main(sys.argv[1:]) == 0
print("flax imported:", "flax" in sys.modules)
"""


def test_a_second_run_reads_its_programs_and_imports_no_flax(weights, tmp_path):
  vgg, dec = weights
  write_image(tmp_path / "c.png", 40, 56, 1)
  write_image(tmp_path / "s.png", 48, 40, 2)
  home = tmp_path / "home"
  outs = []
  for run in ("first", "second"):
    argv = ["--content", tmp_path / "c.png", "--style", tmp_path / "s.png", "--vgg", vgg,
            "--decoder", dec, "--output", tmp_path / run, "--ext", "png"]
    code = STYLIZE.replace("sys.argv[1:]", repr([str(a) for a in argv]))
    outs.append(_python(code, home))
  assert "flax imported: True" in outs[0]  # traced: the model is built
  assert "flax imported: False" in outs[1]  # read back: no trace, no Flax
  names = sorted(p.name.split("-")[0] for p in (home / "programs").iterdir())
  assert names == ["decode", "encode_content", "encode_style"]
  from PIL import Image
  a, b = (np.asarray(Image.open(tmp_path / run / "c_stylized_s.png")) for run in ("first", "second"))
  np.testing.assert_array_equal(a, b)


@programs.Program
def _affine(scale, x, y):
  return x * scale + y, x - y


def test_programs_are_keyed_by_shapes_and_the_static_argument(tmp_path, monkeypatch):
  monkeypatch.setenv("ADAIN_HOME", str(tmp_path))
  x, y = np.arange(6, dtype=np.float32), np.ones(6, np.float32)
  a, b = _affine(2.0, x, y)
  np.testing.assert_array_equal(a, 2 * x + 1)
  np.testing.assert_array_equal(b, x - 1)
  _affine(2.0, x, y)
  _affine(3.0, x, y)
  _affine(2.0, x[:4], y[:4])
  assert len(list((tmp_path / "programs").iterdir())) == 3
  np.testing.assert_array_equal(_affine(3.0, x, y)[0], 3 * x + 1)


class _Payload:
  """A pickle that would run a command if a plain pickle.load read it."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return os.system, (f"touch {self.marker}",)


def test_a_damaged_or_foreign_file_is_compiled_again_and_never_runs(tmp_path, monkeypatch):
  monkeypatch.setenv("ADAIN_HOME", str(tmp_path))
  x = np.arange(4, dtype=np.float32)
  code = ("from adain.programs import Program\nimport numpy as np\n@Program\ndef _twice(s, x):\n"
          "  return x * s\nprint(_twice(2.0, np.arange(4, dtype=np.float32)).tolist())\n")
  assert _python(code, tmp_path).strip() == str((2 * x).tolist())
  (path,) = (tmp_path / "programs").iterdir()
  marker = tmp_path / "ran"
  for bad in (b"garbage", programs.FORMAT + b'{"outputs": null}\n' + pickle.dumps(_Payload(marker))):
    path.write_bytes(bad)
    assert _python(code, tmp_path).strip() == str((2 * x).tolist())
    assert path.read_bytes().startswith(programs.FORMAT) and path.stat().st_size > 1000
  assert not marker.exists()
  with pytest.raises(pickle.UnpicklingError, match="posix.system is not part of a JAX program"):
    programs._load(programs.FORMAT + b'{"outputs": null}\n' + pickle.dumps(_Payload(marker)), None,
                   jax.devices()[0])


def test_a_program_saved_beside_jaxs_own_cache_still_runs(tmp_path):
  """JAX's persistent cache hands back executables that serialize without their code; a
  program is compiled past it, so that the saved file runs in a later process."""
  cache = {"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax-cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
  define = ("import numpy as np\nfrom adain.models import AdaIN\n"
            "from adain.stylizer import Stylizer, _encode_content, _in_bucket\n"
            "s = Stylizer(AdaIN())\nx, hw = _in_bucket(np.full((1, 40, 48, 3), 0.5, np.float32), np.float32)\n"
            "args = (s.variant, s.arrays, x, hw)\n")
  # The program run by jax.jit first puts its executable in JAX's cache; the next process
  # compiles and saves it (past JAX's cache), the last reads the saved one back and runs it.
  jitted = _python(define + "print(float(_encode_content._jit(*args).sum()))\n", tmp_path, **cache)
  assert any((tmp_path / "jax-cache").iterdir())
  saved, read_back = (_python(define + "print(float(_encode_content(*args).sum()))\n", tmp_path, **cache)
                      for _ in range(2))
  assert float(jitted) == float(saved) == float(read_back) != 0


def test_a_stylizer_on_another_device_runs_there(tmp_path):
  code = """
import jax, numpy as np
from adain.models import AdaIN
from adain.stylizer import Stylizer
s = Stylizer(AdaIN())
twin = s.on(jax.devices()[1])
img = np.linspace(0, 1, 40 * 48 * 3, dtype=np.float32).reshape(40, 48, 3)
code, code_there = s.encode_style(img), twin.encode_style(img)
assert code_there.mean.devices() == {jax.devices()[1]}, code_there.mean.devices()
np.testing.assert_allclose(code_there.std, code.std, rtol=1e-6)
print("ok")
"""
  assert _python(code, tmp_path, XLA_FLAGS="--xla_force_host_platform_device_count=2").strip() == "ok"
