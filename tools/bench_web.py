"""The exported page's speed in headless Chromium, side by side in one run, for both networks
(AdaIN and MicroAST, each its own exported pair and page): milliseconds per SIZE x SIZE frame (encoder, then generator, then the canvas, as the page's own #status reports
it) on WebAssembly with 1 thread and with threads, beside ONNX Runtime's native CPU provider on
the same pair; and WebGPU on Chromium's software adapter at the browser test's small size.

A frame is a still: the same content file chosen again (encoded, generated, painted), with the
style encoded once, which is a live frame's work bar the camera read, and ends with a line in
#status; the page's CSS animations are switched off (see Page). The backends take turns, --frames each per round for --rounds rounds after one warm-up
frame each, so that a change in the machine's load falls on all of them. One thread is the page as
any static server gives it (no COOP/COEP headers, as `python -m http.server`); threads are the
page as `python -m adain.export.serve` gives it (cross-origin isolated: min(4, cores)). ONNX
Runtime runs on 1 thread and on as many as the page's WebAssembly. WebGPU here is SwiftShader, a
CPU emulation of a GPU: it shows that the path works, not how fast a GPU is; it takes turns with
WebAssembly on 1 thread at the same size.

The models have random weights (speed does not depend on them), or MicroAST's from --weights DIR.
A MicroAST frame's encoder run gives the content's own code too (alpha's blend needs it), as a
still's does. Prints one JSON line per network and backend, then the table as Markdown. Needs Debian's chromium and onnxruntime-web (make bench fetches it).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SMALL = (48, 36)  # the browser test's WebGPU pair: content 48x36, style 32x32
STATUS = "document.querySelector('#status').textContent"


class Page:
  """The page at ``url`` with ``style`` chosen, timing stills of ``content``."""

  def __init__(self, browser, url: str, content: Path, style: Path):
    self.page, self.content = browser.new_page(), content
    self.page.goto(url)
    # No CSS animation: headless Chromium composites in software, and #status's blinking busy dot
    # alone made a 256x256 frame 1.5-7x slower here (2.1-2.5 s without it, 3.1-14 s with it).
    self.page.add_style_tag(content="*, *::before, *::after { animation: none !important; }")
    self.page.wait_for_function("document.body.dataset.state === 'ready'", timeout=600_000)
    self.page.locator("#style").set_input_files(style)
    self.page.wait_for_function(f"{STATUS}.includes('Now choose')", timeout=600_000)
    self.label = self.page.locator("#backend").text_content()
    self.frames(1)  # warm-up: sessions' first runs compile and allocate

  def frames(self, n: int) -> list[float]:
    times = []
    for _ in range(n):
      self.page.evaluate(f"{STATUS} = ''")
      self.page.locator("#content").set_input_files(self.content)
      line = self.page.wait_for_function(f"/ ms · |error/.test({STATUS}) && {STATUS}",
                                         timeout=600_000).json_value()
      if " ms · " not in line:
        raise RuntimeError(f"{self.label}: {line}")
      times.append(float(line.split(" ms · ")[0].rsplit(" · ", 1)[1]))  # '... · 812 ms · 256×256'
    return times


class NativeOrt:
  """The same frame (encoder, then generator fed as models.json says) in ONNX Runtime's CPU
  provider on ``threads``."""

  def __init__(self, site: Path, size: int, threads: int):
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    self.encoder, self.generator = (
        ort.InferenceSession(str(site / name), opts, providers=["CPUExecutionProvider"])
        for name in ("encoder.onnx", "generator.onnx"))
    self.feeds = json.loads((site / "models.json").read_text())["generator"]["feeds"]
    self.image = np.random.default_rng(0).random((1, size, size, 3), dtype=np.float32)
    self.style = self._feeds(self._encode(), "style")
    self.alpha = np.array(1.0, np.float32)
    self.label = f"ONNX Runtime CPU · {threads} thread{'s' if threads > 1 else ''}"
    self.frames(1)

  def _encode(self) -> dict:
    return dict(zip((o.name for o in self.encoder.get_outputs()), self.encoder.run(None, {"image": self.image})))

  def _feeds(self, outputs: dict, side: str) -> dict:
    return {name: outputs[out] for name, (frm, out) in self.feeds.items() if frm == side}

  def frames(self, n: int) -> list[float]:
    times = []
    for _ in range(n):
      t0 = time.perf_counter()
      content = self._feeds(self._encode(), "content")
      self.generator.run(None, {**content, **self.style, "alpha": self.alpha})
      times.append((time.perf_counter() - t0) * 1000)
    return times


def _noise_png(path: Path, w: int, h: int) -> Path:
  import numpy as np
  from PIL import Image

  Image.fromarray(np.random.default_rng(w).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
  return path


def _load() -> str:
  return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--size", type=int, default=256, help="frame side in pixels")
  p.add_argument("--frames", type=int, default=2, help="frames timed per backend per round")
  p.add_argument("--rounds", type=int, default=3, help="rounds of turns")
  p.add_argument("--ort-web", default="node_modules/onnxruntime-web", help="onnxruntime-web package folder")
  p.add_argument("--weights", metavar="DIR",
                 help="MicroAST's four published files (e.g. ../shared/models/microast); default: random")
  args = p.parse_args()

  from playwright.sync_api import sync_playwright
  from static_site import chromium_args, serve, serve_isolated

  from adain.export import onnx_graph, onnx_microast
  from adain.export.web import find_ort_web, write_page
  from adain.models.adain.network import AdaIN
  from adain.models.microast import weights as microast_weights
  from adain.models.microast.network import MicroAST

  chromium = shutil.which("chromium") or shutil.which("chromium-browser")
  if chromium is None:
    print("error: the benchmark needs Debian's chromium: apt-get install chromium", file=sys.stderr)
    return 1
  load_before = _load()
  with tempfile.TemporaryDirectory(prefix="adain-bench-web-") as tmp:
    tmp = Path(tmp)
    microast = (MicroAST() if args.weights is None else
                microast_weights.model_from_state_dicts(microast_weights.state_dicts(args.weights)))
    sites = {"adain": tmp / "adain", "microast": tmp / "microast"}
    onnx_graph.write(AdaIN(), sites["adain"])
    onnx_microast.write(microast, sites["microast"])
    for site in sites.values():
      write_page(site, find_ort_web(args.ort_web))
    big = _noise_png(tmp / "big.png", args.size, args.size)
    small, style = _noise_png(tmp / "small.png", *SMALL), _noise_png(tmp / "style.png", 32, 32)
    with contextlib.ExitStack() as stack:
      roots = {net: (stack.enter_context(serve(site)), stack.enter_context(serve_isolated(site)))
               for net, site in sites.items()}
      pw = stack.enter_context(sync_playwright())
      browser = pw.chromium.launch(executable_path=chromium, args=chromium_args())
      groups = []
      for net, (plain, isolated) in roots.items():
        wasm_1, wasm_n = (Page(browser, root + "?backend=wasm", big, style) for root in (plain, isolated))
        threads = int(wasm_n.label.split(" · ")[1].split()[0])  # 'WebAssembly · 2 threads'
        groups.append((net, f"{args.size}×{args.size}", [
            wasm_1, wasm_n, NativeOrt(sites[net], args.size, 1), NativeOrt(sites[net], args.size, threads)]))
      plain = roots["adain"][0]
      groups.append(("adain", f"{SMALL[0]}×{SMALL[1]}", [Page(browser, plain + f"?backend={b}", small, style)
                                                        for b in ("webgpu", "wasm")]))
      times = {(net, size, r.label): [] for net, size, runners in groups for r in runners}
      for net, size, runners in groups:
        for _ in range(args.rounds):
          for r in runners:
            times[net, size, r.label] += r.frames(args.frames)
      version = browser.version
      browser.close()
  load_after = _load()

  print(f"{datetime.date.today()} · {platform.machine()}, {os.cpu_count()} cores · Chromium {version} · "
        f"load average (1, 5, 15 min) {load_before} before, {load_after} after · "
        f"tools/bench_web.py --size {args.size} --frames {args.frames} --rounds {args.rounds}")
  for (net, size, label), ms in times.items():
    print(json.dumps({"bench": "web_page", "network": net, "backend": label, "frame": size,
                      "ms_per_frame": round(statistics.median(ms), 1), "frames_ms": [round(t, 1) for t in ms]}))
  print("\n| network | backend | frame | ms/frame, median | frames | speed vs WebAssembly, 1 thread, same size |")
  print("| --- | --- | --- | --- | --- | --- |")
  for (net, size, label), ms in times.items():
    base = statistics.median(times[net, size, "WebAssembly · 1 thread"])
    note = " (SwiftShader: a correctness path, not a speed figure)" if label == "WebGPU" else ""
    print(f"| {net} | {label}{note} | {size} | {statistics.median(ms):,.0f} | {len(ms)} | "
          f"{base / statistics.median(ms):.2f}× |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
