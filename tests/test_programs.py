"""adain.inference.programs: compiled programs saved on disk, read back by a later process without tracing."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys

import jax
import numpy as np
import pytest

from adain.inference import programs
from conftest import write_image


def _run(code: str, home, **env) -> subprocess.CompletedProcess:
  """Runs code in a fresh interpreter with its own ADAIN_HOME; it must succeed."""
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                        env={**os.environ, "ADAIN_HOME": str(home), **env})
  assert done.returncode == 0, done.stderr[-3000:]
  return done


def _python(code: str, home, **env) -> str:
  """Runs code in a fresh interpreter with its own ADAIN_HOME; returns its stdout."""
  return _run(code, home, **env).stdout


STYLIZE = """
import sys
from adain.commands import stylize
assert stylize.main(sys.argv[1:]) == 0
print("flax imported:", "flax" in sys.modules)
"""


@pytest.mark.slow  # two CLI runs in subprocesses
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


TWICE = ("from adain.inference.programs import Program\nimport numpy as np\n@Program\ndef _twice(s, x):\n"
         "  return x * s\nprint(_twice(2.0, np.arange(4, dtype=np.float32)).tolist())\n")


@pytest.mark.slow  # three subprocesses
def test_a_program_written_by_one_process_is_read_by_the_next(tmp_path):
  """Fails loudly where saved programs stop loading (another Python's pickles, a new JAX):
  the second process may not compile."""
  first = _run(TWICE, tmp_path)
  assert len(list((tmp_path / "programs").iterdir())) == 1
  no_compile = ("from adain.inference import programs\ndef _compile(lowered):\n"
                "  raise SystemExit('compiled again: the saved program was not read back')\n"
                "programs._compile = _compile\n")
  second = _run(no_compile + TWICE, tmp_path)
  assert second.stdout == first.stdout == "[0.0, 2.0, 4.0, 6.0]\n"
  assert first.stderr == second.stderr == ""


# Pickles written opcode by opcode: GLOBAL, a str, and a call of a callable with arguments.
def _global(module: str, name: str) -> bytes:
  return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text: str) -> bytes:
  return b"X" + len(text.encode()).to_bytes(4, "little") + text.encode()


def _call(fn: bytes, *args: bytes) -> bytes:
  return fn + b"(" + b"".join(args) + b"tR"


GETATTR = _global("builtins", "getattr")


def _getattr(obj: bytes, name: str) -> bytes:
  return _call(GETATTR, obj, _str(name))


def _os_system(command: str) -> bytes:
  """os.system(command) reached with getattr alone from a class the allow-list holds:
  ShapedArray.update.__globals__.get("__builtins__").get("__import__")("os").system(...)."""
  module_globals = _getattr(_getattr(_global("jax._src.core", "ShapedArray"), "update"), "__globals__")
  builtins = _call(_getattr(module_globals, "get"), _str("__builtins__"))
  os_module = _call(_call(_getattr(builtins, "get"), _str("__import__")), _str("os"))
  return _call(_getattr(os_module, "system"), _str(command))


def _unpickle(data: bytes):
  device = jax.devices()[0]
  return programs._Unpickler(io.BytesIO(data + b"."), device.client, [device]).load()


def test_getattr_fetches_an_allowed_enums_member_and_nothing_else(tmp_path):
  from jax._src.core import MemorySpace

  memory_space = _global("jax._src.core", "MemorySpace")
  assert _unpickle(_getattr(memory_space, "Device")) is MemorySpace.Device
  marker = tmp_path / "ran"
  attempts = {
      "a non-member name": _getattr(memory_space, "Nope"),
      "an enum's attribute": _getattr(memory_space, "__init__"),
      "a member's attribute": _getattr(_getattr(memory_space, "Device"), "__class__"),
      "a class that is no enum": _getattr(_global("jax._src.core", "ShapedArray"), "__init__"),
      "a module's attribute": _getattr(_str("os"), "system"),
      "os.system": _os_system(f"touch {marker}"),
  }
  # The last is a real attack: a plain unpickler runs it.
  pickle.loads(attempts["os.system"] + b".")
  assert marker.exists()
  marker.unlink()
  for what, data in attempts.items():
    with pytest.raises(pickle.UnpicklingError, match="is not a member of a JAX enum"):
      _unpickle(data)
    assert not marker.exists(), what
  with pytest.raises(pickle.UnpicklingError, match="posix.system is not part of a JAX program"):
    _unpickle(_call(_global("posix", "system"), _str(f"touch {marker}")))
  assert not marker.exists()


@pytest.mark.slow  # a subprocess per damaged file
def test_a_damaged_or_foreign_file_is_said_compiled_again_and_never_runs(tmp_path):
  x = np.arange(4, dtype=np.float32)
  assert _python(TWICE, tmp_path).strip() == str((2 * x).tolist())
  (path,) = (tmp_path / "programs").iterdir()
  marker = tmp_path / "ran"
  header = programs.FORMAT + b'{"outputs": null}\n'
  for bad, reason in [(b"garbage", "ValueError: not an adain program"),
                      (header + _call(_global("posix", "system"), _str(f"touch {marker}")) + b".",
                       "UnpicklingError: posix.system is not part of a JAX program"),
                      (header + _os_system(f"touch {marker}") + b".",
                       "UnpicklingError: getattr(ShapedArray, 'update') is not a member of a JAX enum")]:
    path.write_bytes(bad)
    done = _run(TWICE, tmp_path)
    assert done.stdout.strip() == str((2 * x).tolist())
    assert done.stderr == f"saved program {path} unreadable ({reason}); compiling it again\n"
    assert path.read_bytes().startswith(programs.FORMAT) and path.stat().st_size > 1000
  assert not marker.exists()


def test_an_unreadable_program_is_said_once_per_process(tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(programs, "_warned", False)
  monkeypatch.setattr(programs, "programs_dir", lambda: tmp_path)

  @programs.Program
  def _plus(s, x):
    return x + s

  for n in (3, 4):  # two programs, both files damaged
    _plus(1.0, np.zeros(n, np.float32))
  for path in tmp_path.iterdir():
    path.write_bytes(b"garbage")
  _plus._compiled.clear()
  for n in (3, 4):
    np.testing.assert_array_equal(_plus(1.0, np.zeros(n, np.float32)), np.ones(n))
  lines = capsys.readouterr().err.splitlines()
  assert len(lines) == 1 and lines[0].endswith("unreadable (ValueError: not an adain program); compiling it again")


@pytest.mark.slow  # subprocesses
def test_a_program_saved_beside_jaxs_own_cache_still_runs(tmp_path):
  """JAX's persistent cache hands back executables that serialize without their code; a
  program is compiled past it, so that the saved file runs in a later process."""
  cache = {"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax-cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
  define = ("import numpy as np\nfrom adain.models.adain.network import AdaIN\n"
            "from adain.inference.stylizer import Stylizer, _encode_content, _in_bucket\n"
            "s = Stylizer(AdaIN())\nx, hw = _in_bucket(np.full((1, 40, 48, 3), 0.5, np.float32), np.float32)\n"
            "args = (s.params.spec, s.params.arrays, x, hw)\n")
  # The program run by jax.jit first puts its executable in JAX's cache; the next process
  # compiles and saves it (past JAX's cache), the last reads the saved one back and runs it.
  jitted = _python(define + "print(float(_encode_content._jit(*args).sum()))\n", tmp_path, **cache)
  assert any((tmp_path / "jax-cache").iterdir())
  saved, read_back = (_python(define + "print(float(_encode_content(*args).sum()))\n", tmp_path, **cache)
                      for _ in range(2))
  assert float(jitted) == float(saved) == float(read_back) != 0


@pytest.mark.slow  # a subprocess with several devices
def test_a_stylizer_on_another_device_runs_there(tmp_path):
  code = """
import jax, numpy as np
from adain.models.adain.network import AdaIN
from adain.inference.stylizer import Stylizer
s = Stylizer(AdaIN())
twin = s.on(jax.devices()[1])
img = np.linspace(0, 1, 40 * 48 * 3, dtype=np.float32).reshape(40, 48, 3)
code, code_there = s.encode_style(img), twin.encode_style(img)
assert code_there.mean.devices() == {jax.devices()[1]}, code_there.mean.devices()
np.testing.assert_allclose(code_there.std, code.std, rtol=1e-6)
print("ok")
"""
  assert _python(code, tmp_path, XLA_FLAGS="--xla_force_host_platform_device_count=2").strip() == "ok"
