"""Crafted .npz files (style codes, native weights): refused by name, in bounded memory."""

from __future__ import annotations

import io
import tracemalloc
import zipfile

import numpy as np
import pytest

from adain.weights import npz
from adain.errors import AdainError, WeightsError
from adain.models.adain.codes import STYLE_CODE_FORMAT, StyleCode
from adain.commands.stylize import main
from adain.models.adain.weights import load_native
from adain.weights import NATIVE_FORMAT


def npy_header(shape, dtype="<f4") -> bytes:
  buf = io.BytesIO()
  np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
  return buf.getvalue()


def npy(a: np.ndarray) -> bytes:
  buf = io.BytesIO()
  np.lib.format.write_array(buf, np.asarray(a), allow_pickle=True)
  return buf.getvalue()


def craft(path, members: dict[str, bytes], fmt: str = STYLE_CODE_FORMAT, deflate=True):
  with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as z:
    z.writestr("__format__.npy", npy(np.asarray(fmt)))
    for name, data in members.items():
      z.writestr(name, data)
  return path


def refused_quickly_and_small(fn, match):
  tracemalloc.start()
  try:
    with pytest.raises(AdainError, match=match):
      fn()
    peak = tracemalloc.get_traced_memory()[1]
  finally:
    tracemalloc.stop()
  assert peak < 20 * 2**20


def test_declared_shape_beyond_the_bytes(tmp_path):
  path = craft(tmp_path / "huge.npz", {"mean.npy": npy_header((10**9, 512)) + b"\0" * 64,
                                       "std.npy": npy(np.ones((1, 512), np.float32))})
  refused_quickly_and_small(lambda: StyleCode.load(path),
                            r"huge\.npz: not a readable \.npz file \(mean\.npy declares shape")


def test_decompression_bomb(tmp_path):
  """A member that inflates to 300 MB from a few hundred KB: refused from the zip directory."""
  path = tmp_path / "bomb.npz"
  n = 300 * 2**20
  with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("__format__.npy", npy(np.asarray(STYLE_CODE_FORMAT)))
    with z.open("mean.npy", "w", force_zip64=True) as f:
      f.write(npy_header((n // 4,)))
      zeros = bytes(2**20)
      for _ in range(n // len(zeros)):
        f.write(zeros)
  assert path.stat().st_size < 2 * 2**20
  refused_quickly_and_small(lambda: StyleCode.load(path), r"bomb\.npz: .*over the \d+-byte limit")


def test_bomb_in_native_weights(tmp_path, monkeypatch):
  monkeypatch.setattr(npz, "MAX_BYTES", 2**20)
  path = craft(tmp_path / "decoder.npz", {"1.weight.npy": npy(np.zeros((2**19,), np.float32))},
               fmt=NATIVE_FORMAT)
  with pytest.raises(WeightsError, match=r"decoder\.npz: not a readable \.npz file \(.*limit"):
    load_native(path, "decoder")


def test_size_in_zip_directory_understated(tmp_path):
  """The zip says a member is small; zipfile stops inflating there and the data is refused."""
  path = craft(tmp_path / "liar.npz", {"mean.npy": npy(np.ones((1, 512), np.float32)),
                                       "std.npy": npy(np.ones((1, 512), np.float32))})
  data = bytearray(path.read_bytes())
  # Understate mean.npy's uncompressed size in its central directory entry.
  with zipfile.ZipFile(path) as z:
    info = z.getinfo("mean.npy")
  at = data.rfind(b"PK\x01\x02", 0, data.find(b"mean.npy", data.find(b"PK\x01\x02")))
  data[at + 24:at + 28] = (info.file_size // 2).to_bytes(4, "little")
  path.write_bytes(bytes(data))
  with pytest.raises(AdainError, match=r"liar\.npz: not a readable \.npz file"):
    StyleCode.load(path)


def test_pickled_member_refused(tmp_path):
  path = craft(tmp_path / "pickle.npz", {"mean.npy": npy(np.array([{"a": 1}], dtype=object)),
                                         "std.npy": npy(np.ones((1, 512), np.float32))})
  with pytest.raises(AdainError, match=r"pickle\.npz: .*mean\.npy holds Python objects"):
    StyleCode.load(path)


def test_valid_code_still_loads(tmp_path):
  code = StyleCode(np.full((1, 512), 0.5, np.float32), np.ones((1, 512), np.float32))
  code.save(tmp_path / "ok.npz")
  np.testing.assert_array_equal(np.asarray(StyleCode.load(tmp_path / "ok.npz").mean), code.mean)


def test_cli_names_the_crafted_file(tmp_path, weights, capsys):
  from conftest import write_image

  path = craft(tmp_path / "evil.npz", {"mean.npy": npy_header((2**40,)), "std.npy": b""})
  content = write_image(tmp_path / "c.png", 32, 32)
  rc = main(["--vgg", str(weights[0]), "--decoder", str(weights[1]), "--content", str(content),
             "--style", str(path), "--output", str(tmp_path / "out")])
  err = capsys.readouterr().err
  assert rc == 1 and "Traceback" not in err
  assert f"error: {path}: not a readable .npz file" in err
