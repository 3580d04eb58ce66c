"""fetch against a real HTTP server on loopback: every way a download fails leaves nothing."""

from __future__ import annotations

import hashlib
import io
import socket
import sys
import http.server
import threading
from pathlib import Path

import pytest

from adain.hub.download import DownloadError, fetch
from adain.models.adain.weights import PUBLISHED
from adain.errors import WeightsError

BODY = b"pretend weights " * 1000  # 16 kB, more than one read chunk would need to be exact
STALL_S = 5.0  # upper bound on how long a stalling handler holds its thread


def _handler(release: threading.Event, hits: list[str]):
  class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
      hits.append(f"{self.path} {self.headers.get('User-Agent')}")
      if self.path == "/good.bin":
        self._head(200, len(BODY))
        self.wfile.write(BODY)
      elif self.path == "/short.bin":
        self._head(200, len(BODY) + 100)
        self.wfile.write(BODY)
        self.close_connection = True
      elif self.path == "/stall.bin":
        self._head(200, len(BODY))
        self.wfile.write(BODY[:10])
        self.wfile.flush()
        release.wait(STALL_S)
        self.close_connection = True
      elif self.path == "/redirect.bin":
        self._head(302, 0, Location="/good.bin")
      elif self.path == "/to-file.bin":
        self._head(302, 0, Location="file:///etc/passwd")
      elif self.path == "/to-ftp.bin":
        self._head(302, 0, Location="ftp://127.0.0.1/w.pth")
      else:
        self._head(404, 0)

    def _head(self, code: int, length: int, **headers: str):
      self.send_response(code)
      self.send_header("Content-Length", str(length))
      for key, value in headers.items():
        self.send_header(key, value)
      self.end_headers()

    def log_message(self, *args):
      pass

  return Handler


@pytest.fixture
def server():
  """The base URL of a threaded server on 127.0.0.1, and the list of requests it saw."""
  release, hits = threading.Event(), []
  srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(release, hits))
  srv.daemon_threads = True
  thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
  thread.start()
  try:
    yield f"http://127.0.0.1:{srv.server_address[1]}", hits
  finally:
    release.set()
    srv.shutdown()
    srv.server_close()
    thread.join(STALL_S)


class Validator:
  """Records the paths it was asked about (and their bytes then); fails when told to."""

  def __init__(self, fail: BaseException | None = None):
    self.fail = fail
    self.seen: list[tuple[Path, bytes]] = []

  def __call__(self, path: Path) -> None:
    self.seen.append((path, path.read_bytes()))
    if self.fail is not None:
      raise self.fail


def _files(folder: Path) -> list[str]:
  return sorted(p.name for p in folder.iterdir())


def test_good_download(server, tmp_path):
  base, hits = server
  dest = tmp_path / "new" / "folder" / "vgg.pth"
  check = Validator()
  assert fetch([f"{base}/good.bin"], dest, check, progress=False) == dest
  assert dest.read_bytes() == BODY
  assert _files(dest.parent) == ["vgg.pth"]
  [(seen, content)] = check.seen
  assert seen.parent == dest.parent and seen != dest and content == BODY
  assert hits[0].startswith("/good.bin adain")


def test_redirect_followed(server, tmp_path):
  base, _ = server
  dest = tmp_path / "w.pth"
  fetch([f"{base}/redirect.bin"], dest, Validator(), progress=False)
  assert dest.read_bytes() == BODY


def test_sha256_match_replaces_existing(server, tmp_path):
  base, _ = server
  dest = tmp_path / "w.pth"
  dest.write_bytes(b"old")
  fetch([f"{base}/good.bin"], dest, Validator(), sha256=hashlib.sha256(BODY).hexdigest().upper(),
        progress=False)
  assert dest.read_bytes() == BODY


def test_cut_short(server, tmp_path):
  base, _ = server
  dest = tmp_path / "w.pth"
  check = Validator()
  with pytest.raises(DownloadError, match=rf"got {len(BODY)} of {len(BODY) + 100} bytes"):
    fetch([f"{base}/short.bin"], dest, check, progress=False)
  assert check.seen == [] and _files(tmp_path) == []


def test_wrong_file(server, tmp_path):
  base, _ = server
  dest = tmp_path / "w.pth"
  check = Validator(WeightsError("whatever.part", "not an AdaIN decoder: missing 18 tensor(s)"))
  with pytest.raises(DownloadError) as info:
    fetch([f"{base}/good.bin"], dest, check, progress=False)
  assert "not an AdaIN decoder: missing 18 tensor(s)" in str(info.value)
  assert "whatever.part" not in str(info.value)
  assert len(check.seen) == 1 and _files(tmp_path) == []


def test_fallback_after_404(server, tmp_path):
  base, hits = server
  dest = tmp_path / "w.pth"
  check = Validator()
  fetch([f"{base}/missing.bin", f"{base}/good.bin"], dest, check, progress=False)
  assert dest.read_bytes() == BODY and _files(tmp_path) == ["w.pth"]
  assert [h.split()[0] for h in hits] == ["/missing.bin", "/good.bin"]
  assert len(check.seen) == 1


def test_sha256_mismatch(server, tmp_path):
  base, _ = server
  dest = tmp_path / "w.pth"
  check = Validator()
  wrong = f"SHA-256 is {hashlib.sha256(BODY).hexdigest()}, expected 0{{64}}"
  with pytest.raises(DownloadError, match=wrong):
    fetch([f"{base}/good.bin"], dest, check, sha256="0" * 64, progress=False)
  assert check.seen == [] and _files(tmp_path) == []


def test_size_limit(server, tmp_path):
  base, _ = server
  with pytest.raises(DownloadError, match=f"{len(BODY)} bytes is over the 1000-byte limit"):
    fetch([f"{base}/good.bin"], tmp_path / "w.pth", Validator(), progress=False, max_bytes=1000)
  assert _files(tmp_path) == []


def test_stalled_server_times_out(server, tmp_path):
  base, _ = server
  dest = tmp_path / "w.pth"
  with pytest.raises(DownloadError, match=r"stall\.bin \(timed out after 0\.3 s\)"):
    fetch([f"{base}/stall.bin"], dest, Validator(), progress=False, timeout=0.3)
  assert _files(tmp_path) == []


def test_refused_schemes(server, tmp_path):
  base, hits = server
  secret = tmp_path / "secret.pth"
  secret.write_bytes(BODY)
  dest = tmp_path / "out" / "w.pth"
  with pytest.raises(DownloadError) as info:
    fetch([secret.as_uri(), "ftp://127.0.0.1/w.pth", f"{base}/to-file.bin", f"{base}/to-ftp.bin"],
          dest, Validator(), progress=False)
  message = str(info.value)
  assert "refused scheme 'file'" in message and "refused scheme 'ftp'" in message
  assert "Redirection to url 'file:///etc/passwd' is not allowed" in message
  assert "refused redirect to ftp://127.0.0.1/w.pth" in message
  assert _files(dest.parent) == []
  assert [h.split()[0] for h in hits] == ["/to-file.bin", "/to-ftp.bin"]


def test_message_names_every_url_and_dest(server, tmp_path):
  base, _ = server
  dest = tmp_path / "w.pth"
  with socket.socket() as sock:  # a port nothing listens on once this closes
    sock.bind(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{sock.getsockname()[1]}/w.pth"
  urls = [f"{base}/a.bin", f"{base}/short.bin", f"{base}/b.bin", closed]
  with pytest.raises(DownloadError) as info:
    fetch(urls, dest, Validator(), progress=False)
  err = info.value
  assert err.path == str(dest)
  message = str(err)
  assert message.startswith(f"{dest}: ") and "\n" not in message
  assert f"{urls[0]} (HTTP 404 Not Found); {urls[1]} (transfer cut short" in message
  assert f"{urls[2]} (HTTP 404 Not Found); {closed} (Connection refused)" in message


def test_keyboard_interrupt_leaves_nothing(server, tmp_path):
  base, _ = server
  dest = tmp_path / "w.pth"
  check = Validator(KeyboardInterrupt())
  with pytest.raises(KeyboardInterrupt):
    fetch([f"{base}/good.bin", f"{base}/good.bin"], dest, check, progress=False)
  assert len(check.seen) == 1 and _files(tmp_path) == []


def test_bad_arguments(tmp_path):
  with pytest.raises(ValueError, match="64 hex digits"):
    fetch(["http://127.0.0.1/w"], tmp_path / "w", Validator(), sha256="abc")
  with pytest.raises(DownloadError, match="no URL"):
    fetch([], tmp_path / "w", Validator())


def test_published_sources():
  assert set(PUBLISHED) == {"vgg", "decoder"}
  for kind, stem in (("vgg", "vgg_normalised"), ("decoder", "decoder")):
    (pth, t7) = PUBLISHED[kind]
    release = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0"
    assert pth.url == f"{release}/{stem}.pth"
    assert t7.url == f"https://s3.amazonaws.com/xunhuang-public/adain/{stem}.t7"
    assert (pth.filename, t7.filename) == (f"{stem}.pth", f"{stem}.t7")


def test_progress_bar_only_on_a_terminal(server, tmp_path, monkeypatch, capsys):
  base, _ = server
  fetch([f"{base}/good.bin"], tmp_path / "a.pth", Validator())
  assert capsys.readouterr().err == ""

  class Terminal(io.StringIO):
    def isatty(self):
      return True

  terminal = Terminal()
  monkeypatch.setattr(sys, "stderr", terminal)
  fetch([f"{base}/good.bin"], tmp_path / "b.pth", Validator())
  assert "b.pth" in terminal.getvalue() and "15.6k/15.6k" in terminal.getvalue()
  fetch([f"{base}/good.bin"], tmp_path / "c.pth", Validator(), progress=False)
  assert "c.pth" not in terminal.getvalue()
