"""The exported page as the browser test and tools/bench_web.py meet it: a quiet static server on a
loopback port (no COOP/COEP headers, as `python -m http.server`), `python -m adain.export.serve`
(cross-origin isolated) on another, and a clip for the fake camera."""

from __future__ import annotations

import contextlib
import functools
import http.server
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

# onnxruntime-web as make test installs it (npm install --no-save, in the repository's root).
ORT_WEB = Path(__file__).resolve().parents[1] / "node_modules" / "onnxruntime-web"


class _Quiet(http.server.SimpleHTTPRequestHandler):
  def log_message(self, *args):
    pass


@contextlib.contextmanager
def serve(folder: Path):
  """The URL of ``folder`` served on a free port of 127.0.0.1, for the ``with`` block."""
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=folder))
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield f"http://127.0.0.1:{server.server_address[1]}/"
  finally:
    server.shutdown()
    server.server_close()


@contextlib.contextmanager
def serve_isolated(folder: Path):
  """The URL of ``folder`` served by ``python -m adain.export.serve`` on a free port of 127.0.0.1,
  for the ``with`` block; then Ctrl-C (SIGINT), which must stop it cleanly: exit 0, no traceback."""
  with tempfile.TemporaryFile("w+") as log:  # its request log: a pipe left unread could fill and block it
    server = subprocess.Popen(
        [sys.executable, "-m", "adain.export.serve", str(folder), "--port", "0"], text=True,
        stdout=subprocess.PIPE, stderr=log)
    try:
      line = server.stdout.readline()
      assert line.startswith("serving ") and " on http://127.0.0.1:" in line, line
      yield line.split(" on ")[1].split()[0]
      server.send_signal(signal.SIGINT)
      out = server.communicate(timeout=60)[0]
    finally:
      server.kill()  # still running only after a failure
      server.wait()
    log.seek(0)
    err = log.read()
  assert server.returncode == 0 and out == "", (server.returncode, out, err)
  assert err.endswith("stopped\n") and "Traceback" not in err, err


def write_y4m(path: Path, w: int, h: int, frames: int = 12) -> Path:
  """A clip Chromium's fake camera plays in a loop: a bright square moving over a gradient
  (YUV4MPEG2: a text header, then per frame 'FRAME' and the I420 planes)."""
  yy, xx = np.mgrid[0:h, 0:w]
  with open(path, "wb") as f:
    f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
    for i in range(frames):
      luma = (40 + 120 * xx / w + 40 * yy / h).astype(np.uint8)
      x0 = (i * w // frames) % (w - 32)
      luma[h // 3:h // 3 + 32, x0:x0 + 32] = 235
      u = np.full((h // 2, w // 2), 90 + 8 * i, np.uint8)
      v = np.full((h // 2, w // 2), 170 - 6 * i, np.uint8)
      f.write(b"FRAME\n" + luma.tobytes() + u.tobytes() + v.tobytes())
  return path


def chromium_args(clip: Path | None = None) -> list[str]:
  """Launch flags: no sandbox (containers), WebGPU (Debian's Chromium then gives pages on
  http://127.0.0.1 its software adapter, SwiftShader, headless and without a GPU; nothing else is
  needed), and with ``clip`` a fake camera that plays it, allowed."""
  camera = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}"] if clip else []
  return ["--no-sandbox", "--enable-unsafe-webgpu", *camera]
