"""Frames per second of the app's Live tab at each frame size, as a viewer sees them.

  .venv/bin/python tools/bench_live.py [--model adain|microast] [--weights DIR] [--seconds 20]
      [--rounds 1] [--sizes 128,192,256,384,512]

Starts python -m adain.app --model MODEL with the seeded stand-in weights of tests/ (speed does
not depend on their values; MicroAST's are tests/fixtures/microast/weights, or its real files
with --weights DIR, copied since loading writes a converted .npz beside each) and Debian's
chromium with a fake 640x480 camera playing a clip made here; streams the Live tab with the demo style and, size after size (rounds alternate them, so that a busy
machine slows all alike), reads the tab's line once a second from the second frame at that size
on (the first may include compiling for it); a size without two frames in --wait seconds is
left out. JSON lines give each reading; the summary the medians of frames/s and of a frame's
model milliseconds per size.

--stages times a live frame's steps in this process instead, without browser or server (median
of --frames after one): the camera's 640x480 JPEG data URL decoded as Gradio does, scaled to the
size (adain.media.images.from_pil), encode_content, generate at --alpha (below 1 MicroAST also
encodes the frame's own style code), and the JPEG the page fetches.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

MICROAST_WEIGHTS = ROOT / "tests/fixtures/microast/weights"
LINE = re.compile(r"([0-9.]+) frames/s · ([0-9]+) ms a frame · ([0-9]+)×([0-9]+) px")


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--seconds", type=float, default=20, help="readings per size and round")
  p.add_argument("--rounds", type=int, default=1)
  p.add_argument("--wait", type=float, default=300, help="seconds to wait for a size's first two frames")
  p.add_argument("--sizes", default="128,192,256,384,512")
  p.add_argument("--model", choices=("adain", "microast"), default="adain")
  p.add_argument("--weights", metavar="DIR", type=Path, default=MICROAST_WEIGHTS,
                 help="microast's weights folder")
  p.add_argument("--stages", action="store_true", help="time a frame's steps in process (see above)")
  p.add_argument("--frames", type=int, default=10, help="--stages: frames per size")
  p.add_argument("--alpha", type=float, default=1.0, help="--stages: generate's alpha")
  args = p.parse_args()

  import seeded_weights
  from clips import frame_images, write_y4m
  from playwright.sync_api import TimeoutError as PlaywrightTimeout
  from playwright.sync_api import sync_playwright

  tmp = Path(tempfile.mkdtemp(prefix="bench-live-"))
  if args.model == "adain":
    vgg, decoder = seeded_weights.save(tmp)
    weights = ["--vgg", vgg, "--decoder", decoder]
  else:
    weights = ["--model", "microast", "--weights", shutil.copytree(args.weights, tmp / "microast")]
  if args.stages:
    return stages(args, weights, frame_images(args.frames + 1, 480, 640))
  cam = write_y4m(tmp / "camera.y4m", frame_images(30, 480, 640))
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  url = f"http://127.0.0.1:{port}/"
  log = open(tmp / "server.log", "wb")
  server = subprocess.Popen([sys.executable, "-m", "adain.app", "--port", str(port), *map(str, weights)],
                            stdout=log, stderr=log, cwd=ROOT)
  sizes = args.sizes.split(",")
  readings: dict[str, list[tuple[float, float]]] = {s: [] for s in sizes}
  try:
    while True:
      try:
        urllib.request.urlopen(url, timeout=5).close()
        break
      except OSError:
        assert server.poll() is None, (tmp / "server.log").read_text()
        time.sleep(0.5)
    with sync_playwright() as pw:
      browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=[
          "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
          f"--use-file-for-fake-video-capture={cam}"])
      page = browser.new_page(viewport={"width": 1400, "height": 1000})
      page.goto(url)
      page.wait_for_selector("#styles input[type=file]", state="attached", timeout=120_000)
      page.locator("#styles input[type=file]").set_input_files(str(ROOT / "adain/assets/style.png"))
      page.get_by_role("tab", name="Live").click()
      page.get_by_text("Click to Access Webcam").click()
      page.locator("#live-webcam button[aria-label='capture photo']").click()
      for _ in range(args.rounds):
        for size in sizes:
          page.locator("#live-size").get_by_text(size, exact=True).click()
          try:
            page.wait_for_function("s => document.querySelector('#live-fps').innerText.includes(s)",
                                   arg=f"×{size} px", timeout=1000 * args.wait)
            first = page.locator("#live-fps").inner_text()
            page.wait_for_function("s => document.querySelector('#live-fps').innerText !== s",
                                   arg=first, timeout=1000 * args.wait)  # a second frame: compiled
          except PlaywrightTimeout:
            print(json.dumps({"size": int(size), "error": f"no two frames in {args.wait:g} s"}), flush=True)
            continue
          end = time.monotonic() + args.seconds
          while time.monotonic() < end:
            time.sleep(1)
            m = LINE.search(page.locator("#live-fps").inner_text())
            if m and m.group(4) == size:
              readings[size].append((float(m.group(1)), float(m.group(2))))
              print(json.dumps({"size": int(size), "fps": readings[size][-1][0],
                                "ms": readings[size][-1][1]}), flush=True)
      browser.close()
  finally:
    server.terminate()
    server.wait(30)
  print("size  frames/s  ms a frame (medians)")
  for size in sizes:
    fps, ms = zip(*readings[size]) if readings[size] else ((0,), (0,))
    print(f"{size:>4}  {statistics.median(fps):8.2f}  {statistics.median(ms):10.0f}")


def stages(args, weights: list, frames: list) -> None:
  """--stages: one JSON line per size, each step's median milliseconds."""
  from adain import runtime

  runtime.use_xla_flag()  # as python -m adain.app runs
  from gradio import image_utils
  from PIL import Image

  from adain.app.studio import LIVE_QUALITY
  from adain.commands import app
  from adain.media import images

  stylizer = app.loader(app.build_parser().parse_args(list(map(str, weights))))(args.model)
  style = stylizer.encode_style(images.load_image(ROOT / "adain/assets/style.png", 512))
  urls = []
  for frame in frames:
    data = io.BytesIO()
    Image.fromarray(frame).save(data, "jpeg", quality=92)  # as the page's toDataURL("image/jpeg")
    urls.append("data:image/jpeg;base64," + base64.b64encode(data.getvalue()).decode())
  names = ("decode", "resize", "encode_content", "generate", "jpeg")
  for size in map(int, args.sizes.split(",")):
    frames_ms = []
    for url in urls:
      steps = [time.perf_counter()]
      frame = image_utils.decode_base64_to_image(url)
      steps.append(time.perf_counter())
      img = images.from_pil(frame, size)
      steps.append(time.perf_counter())
      code = stylizer.encode_content(img)
      code.code.block_until_ready()
      steps.append(time.perf_counter())
      out = stylizer.generate(code, style, args.alpha)
      steps.append(time.perf_counter())
      Image.fromarray(images.to_uint8(out)).save(io.BytesIO(), "jpeg", quality=LIVE_QUALITY)
      steps.append(time.perf_counter())
      frames_ms.append([1000 * (b - a) for a, b in zip(steps, steps[1:])])
    frames_ms = frames_ms[1:]  # the first may compile
    total = statistics.median(map(sum, frames_ms))
    print(json.dumps({"size": size, "hw": img.shape[:2],
                      **{n: round(statistics.median(f[i] for f in frames_ms), 1) for i, n in enumerate(names)},
                      "total": round(total, 1), "frames/s": round(1000 / total, 1)}), flush=True)

if __name__ == "__main__":
  main()
