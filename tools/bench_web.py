"""The exported page's speed in headless Chromium on WebAssembly: milliseconds per live frame
(camera frame -> encoder -> generator -> canvas, as the page reports it) at SIZE x SIZE, beside
ONNX Runtime's CPU provider on one thread running the same pair, as a JSON line.

The model has random weights (speed does not depend on them), exported with adain.export and the
page with adain.export.web, served by a loopback static server that sends no COOP/COEP headers, as
`python -m http.server` does: one WebAssembly thread. The fake camera plays a SIZE x SIZE clip and
?live=SIZE fixes the frame size. Needs Debian's chromium and onnxruntime-web (make bench fetches it).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _ort_cpu_ms(site: Path, size: int, frames: int) -> float:
  """The same frame (encoder, then generator) in ONNX Runtime's CPU provider on one thread, right
  after the page's frames: the reference that makes the page's number a ratio on a busy machine."""
  import numpy as np
  import onnxruntime as ort

  opts = ort.SessionOptions()
  opts.intra_op_num_threads = opts.inter_op_num_threads = 1
  encoder, generator = (ort.InferenceSession(str(site / name), opts, providers=["CPUExecutionProvider"])
                        for name in ("encoder.onnx", "generator.onnx"))
  rng = np.random.default_rng(0)
  _, mean, std = encoder.run(None, {"image": rng.random((1, size, size, 3), dtype=np.float32)})
  alpha = np.array(1.0, np.float32)
  times = []
  for _ in range(frames + 1):
    t0 = time.perf_counter()
    (content,) = encoder.run(["content"], {"image": rng.random((1, size, size, 3), dtype=np.float32)})
    generator.run(None, {"content": content, "style_mean": mean, "style_std": std, "alpha": alpha})
    times.append((time.perf_counter() - t0) * 1000)
  return statistics.median(times[1:])


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--size", type=int, default=256, help="live frame side in pixels")
  p.add_argument("--frames", type=int, default=8, help="frames timed, after 2 warm-up frames")
  p.add_argument("--ort-web", default="node_modules/onnxruntime-web", help="onnxruntime-web package folder")
  args = p.parse_args()

  from playwright.sync_api import sync_playwright

  from adain.export import onnx_graph
  from adain.export.web import find_ort_web, write_page
  from adain.models.adain.network import AdaIN
  from static_site import chromium_args, serve, write_y4m

  chromium = shutil.which("chromium") or shutil.which("chromium-browser")
  if chromium is None:
    print("error: the benchmark needs Debian's chromium: apt-get install chromium", file=sys.stderr)
    return 1
  with tempfile.TemporaryDirectory(prefix="adain-bench-web-") as tmp:
    site = Path(tmp) / "site"
    onnx_graph.write(AdaIN(), site)
    write_page(site, find_ort_web(args.ort_web))
    clip = write_y4m(Path(tmp) / "clip.y4m", args.size, args.size)
    with serve(site) as root, sync_playwright() as pw:
      browser = pw.chromium.launch(executable_path=chromium, args=chromium_args(clip))
      page = browser.new_page()
      page.goto(f"{root}?backend=wasm&live={args.size}")
      page.wait_for_function("document.body.dataset.state === 'ready'", timeout=300_000)
      page.locator("#style").set_input_files(site / "demo" / "style.png")
      page.wait_for_function("document.querySelector('#status').textContent.includes('Now choose')",
                             timeout=300_000)
      page.click("#live")
      ms = []
      for n in range(1, args.frames + 3):  # frame 1 warms up, frame 2 starts the clock
        page.wait_for_function("n => Number(document.body.dataset.frames) >= n", arg=n, timeout=300_000)
        if n == 2:
          t0 = time.perf_counter()
        elif n > 2:
          ms.append(float(re.search(r"· (\d+) ms ·", page.locator("#status").text_content()).group(1)))
      wall = (time.perf_counter() - t0) / args.frames * 1000
      fps = float(page.locator("#fps").text_content().split()[0])
      frame = page.locator("#live-size").text_content().removeprefix("live ")
      version = browser.version
      browser.close()
    native = _ort_cpu_ms(site, args.size, args.frames)
  print(json.dumps({"bench": "web_page", "backend": "wasm", "threads": 1, "frame": frame,
                    "ms_per_frame": statistics.median(ms), "ms_per_frame_wall": round(wall, 1),
                    "fps": fps, "ort_cpu_1_thread_ms": round(native, 1),
                    "page_vs_ort_cpu": round(statistics.median(ms) / native, 2),
                    "frames": args.frames, "chromium": version,
                    "cpu": platform.processor() or platform.machine()}))
  return 0


if __name__ == "__main__":
  sys.exit(main())
