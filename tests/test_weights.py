"""Weight import: architecture checks, search order, conversion to native, fetching on first use."""

from __future__ import annotations

import functools
import http.server
import os
import socket
import threading

import numpy as np
import pytest

import seeded_weights
from adain.models.adain import weights
from adain.hub import download
from adain.errors import WeightsError
from adain.models.adain.weights import load_weights, resolve_weights, save_native


@pytest.fixture
def sd():
  return seeded_weights.decoder_state_dict()


@pytest.fixture
def home(tmp_path, monkeypatch):
  """An empty cwd (no checkpoints/) and an empty $ADAIN_HOME."""
  monkeypatch.chdir(tmp_path)
  monkeypatch.setenv("ADAIN_HOME", str(tmp_path / "home"))
  return tmp_path / "home"


def test_check_state_dict_names_the_problem(sd):
  bad = dict(sd)
  bad["28.weight"] = bad["28.weight"][:, :32]
  with pytest.raises(WeightsError, match=r"f\.pth: not an AdaIN decoder: 28.weight has shape"):
    weights.check_state_dict(bad, "decoder", "f.pth")
  with pytest.raises(WeightsError, match="missing 16 tensor"):
    weights.check_state_dict(sd, "vgg", "f.pth")
  with pytest.raises(WeightsError, match="unexpected tensor 'extra'"):
    weights.check_state_dict({**sd, "extra": np.zeros(1)}, "decoder")
  with pytest.raises(WeightsError, match="NaN or Inf"):
    weights.check_state_dict({**sd, "1.bias": np.full(256, np.nan, np.float32)}, "decoder")


def test_full_vgg19_file_is_accepted_and_trimmed():
  full = seeded_weights.vgg_state_dict(full=True)
  used = weights.check_state_dict(full, "vgg")
  assert sorted(used) == sorted(weights.VGG_SHAPES)
  np.testing.assert_array_equal(used["29.weight"], full["29.weight"])


def test_state_dict_round_trips_through_the_model():
  vgg, dec = seeded_weights.vgg_state_dict(), seeded_weights.decoder_state_dict()
  model = weights.model_from_state_dicts(vgg, dec)
  for k, v in weights.encoder_state_dict(model).items():
    np.testing.assert_array_equal(v, vgg[k])
  for k, v in weights.decoder_state_dict(model).items():
    np.testing.assert_array_equal(v, dec[k])


def test_search_order_flag_then_checkpoints_then_cache(home, sd):
  home.mkdir()
  os.mkdir("checkpoints")
  other = {k: v + 1 for k, v in sd.items()}
  save_native(home / "decoder.pth", other, "decoder")  # content decides the format, not the name
  assert resolve_weights("decoder")["1.bias"][0] == other["1.bias"][0]
  save_native("checkpoints/decoder.pth", sd, "decoder")
  assert resolve_weights("decoder")["1.bias"][0] == sd["1.bias"][0]
  save_native("flag.npz", other, "decoder")
  assert resolve_weights("decoder", "flag.npz")["1.bias"][0] == other["1.bias"][0]


def test_converted_once_beside_the_source_and_redone_when_it_changes(home, sd):
  save_native("decoder.pth", sd, "decoder")
  load_weights("decoder.pth", "decoder")
  converted = weights.native_path(weights.Path("decoder.pth"))
  assert converted.name == "decoder.pth.adain.npz" and converted.is_file()
  stamp = converted.stat().st_mtime_ns
  load_weights("decoder.pth", "decoder")
  assert converted.stat().st_mtime_ns == stamp  # reused, not rewritten
  changed = {k: v * 2 for k, v in sd.items()}
  save_native("decoder.pth", changed, "decoder")
  os.utime("decoder.pth", ns=(stamp + 10**9, stamp + 10**9))
  np.testing.assert_array_equal(load_weights("decoder.pth", "decoder")["1.weight"], changed["1.weight"])


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"PK\x03\x04garbage", "damaged zip"),
])
def test_unreadable_files(home, content, message):
  with open("w.pth", "wb") as f:
    f.write(content)
  with pytest.raises(WeightsError, match=message):
    load_weights("w.pth", "vgg")


def test_missing_file_and_folder_without_decoder(home):
  with pytest.raises(WeightsError, match="no such file"):
    load_weights("nope.pth", "vgg")
  os.mkdir("run")
  with pytest.raises(WeightsError, match="not a training workdir"):
    load_weights("run", "decoder")


class _Files(http.server.BaseHTTPRequestHandler):
  def do_GET(self):  # noqa: N802 (http.server's naming)
    body = self.server.files.get(self.path.rsplit("/", 1)[-1])
    if body is None:
      self.send_error(404)
      return
    self.send_response(200)
    self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    self.wfile.write(body)

  def log_message(self, *args):
    pass


@pytest.fixture
def server():
  srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
  srv.files = {}
  thread = threading.Thread(target=functools.partial(srv.serve_forever, poll_interval=0.05))
  thread.start()
  yield srv
  srv.shutdown()
  srv.server_close()
  thread.join(5)


def _publish(monkeypatch, base):
  monkeypatch.setitem(weights.PUBLISHED, "decoder", (
      download.Source(f"{base}/decoder.pth", "decoder.pth"),
      download.Source(f"{base}/decoder.t7", "decoder.t7")))


def test_first_use_downloads_into_the_cache(home, server, monkeypatch, sd, tmp_path):
  save_native(tmp_path / "served.npz", sd, "decoder")
  server.files["decoder.t7"] = (tmp_path / "served.npz").read_bytes()  # first source is a 404
  _publish(monkeypatch, f"http://127.0.0.1:{server.server_address[1]}")
  got = resolve_weights("decoder", progress=False)
  np.testing.assert_array_equal(got["28.weight"], sd["28.weight"])
  assert (home / "decoder.t7").is_file() and not (home / "decoder.pth").exists()


def test_offline_says_which_files_to_place_where(home, monkeypatch, server):
  server.files["decoder.pth"] = b"not weights"  # a wrong file is not kept either
  _publish(monkeypatch, f"http://127.0.0.1:{server.server_address[1]}")
  with pytest.raises(WeightsError) as e:
    resolve_weights("decoder", progress=False)
  msg = str(e.value)
  for part in ("decoder.pth", "decoder.t7", "checkpoints/decoder.pth", str(home / "decoder.pth"),
               "404", "--decoder FILE"):
    assert part in msg
  assert not home.exists() or not [p for p in home.iterdir() if p.is_file()]


def test_refused_connection_is_reported(home, monkeypatch):
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  _publish(monkeypatch, f"http://127.0.0.1:{port}")
  with pytest.raises(WeightsError, match="fetching them failed .*Connection refused"):
    resolve_weights("decoder", progress=False)
