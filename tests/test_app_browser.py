"""python -m adain.app as a user and a script meet it: Debian's Chromium (driven by Playwright, with a
fake camera for the Live tab) and gradio_client, against a server started on a free loopback port
with the seeded test weights."""

from __future__ import annotations

import concurrent.futures
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from adain.app.studio import LIVE_QUALITY
from adain.media import images
from clips import frame_images, write_y4m
from conftest import cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # Chromium, an app server in its own process


@pytest.fixture(scope="module")
def debug_frames(tmp_path_factory):
  """Where the server writes each live frame's input and output (--debug-frames)."""
  return tmp_path_factory.mktemp("live-frames")


@pytest.fixture(scope="module")
def server(weights, microast_weights, debug_frames, tmp_path_factory):
  """The app's URL; the process is stopped after the module's tests."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  log = tmp_path_factory.mktemp("app") / "server.log"
  with open(log, "wb") as out:
    proc = subprocess.Popen([sys.executable, "-m", "adain.app", "--port", str(port), "--vgg",
                             str(weights[0]), "--decoder", str(weights[1]), "--weights", str(microast_weights),
                             "--debug-frames", str(debug_frames)], stdout=out, stderr=out)
  url = f"http://127.0.0.1:{port}/"
  try:
    deadline = time.monotonic() + 180
    while True:
      assert proc.poll() is None, f"the app exited: {log.read_text()}"
      assert time.monotonic() < deadline, f"the app did not answer: {log.read_text()}"
      try:
        urllib.request.urlopen(url, timeout=5).close()
        break
      except OSError:
        time.sleep(0.5)
    yield url
  finally:
    proc.terminate()
    proc.wait(30)


def test_page_in_chromium(server, files, weights, tmp_path):
  """A broken upload gets a message; then upload a pair, move alpha: the result appears and has
  the CLI's pixels."""
  from playwright.sync_api import sync_playwright

  assert CHROMIUM, "the browser test needs Debian's chromium: apt-get install chromium"
  want = cli(weights, tmp_path / "cli", files["content"], [files["a"]], "--alpha", "0.5",
             "--content-size", "64", "--style-size", "64")
  outside = []
  with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    try:
      page = browser.new_page(viewport={"width": 1400, "height": 1000})
      page.on("request", lambda r: r.url.startswith((server, "data:", "blob:")) or outside.append(r.url))
      page.goto(server)
      page.wait_for_selector("#content input[type=file]", state="attached", timeout=60_000)
      assert "adain" in page.title()
      for size in ("#content-size", "#style-size"):
        box = page.locator(f"{size} input[type=number]")
        box.fill("64")
        box.press("Enter")
      page.locator("#styles input[type=file]").set_input_files(files["a"])
      bad = tmp_path / "broken.png"
      bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
      page.locator("#content input[type=file]").set_input_files(bad)
      page.get_by_text("broken.png: corrupt PNG file").first.wait_for(timeout=120_000)
      page.locator("#content input[type=file]").set_input_files(files["content"])
      first = page.wait_for_selector("#result img", timeout=120_000).get_attribute("src")
      page.locator("#alpha input[type=range]").fill("0.5")
      shown = results_until(page, first, want)
      page.screenshot(path=tmp_path / "page.png", full_page=True)
    finally:
      browser.close()
  np.testing.assert_array_equal(shown, want)
  assert outside == []  # offline: nothing but the app itself was asked for


def results_until(page, src: str, want: np.ndarray) -> np.ndarray:
  """The result the page shows after ``src``, or the one after it, ... (up to 3) until it is
  ``want``: a job queued before the change that ``want`` is of may land first."""
  for _ in range(3):
    page.wait_for_function("s => document.querySelector('#result img').src !== s", arg=src,
                           timeout=120_000)
    src = page.locator("#result img").get_attribute("src")
    assert src.endswith("photo_stylized_a.png")
    shown = np.asarray(Image.open(io.BytesIO(page.request.get(src).body())))
    if np.array_equal(shown, want):
      break
  return shown


def test_model_choice_in_chromium(server, files, weights, microast_weights, tmp_path):
  """The page starts on --model's network; choosing microast gives the CLI's MicroAST pixels,
  and adain again the CLI's AdaIN ones; /stylize takes the model by name."""
  from playwright.sync_api import sync_playwright

  assert CHROMIUM, "the browser test needs Debian's chromium: apt-get install chromium"
  sizes = ("--content-size", "0", "--style-size", "0")
  want = {model: cli(w, tmp_path / model, files["content"], [files["a"]], *sizes)
          for model, w in (("adain", weights), ("microast", microast_weights))}
  assert not np.array_equal(want["adain"], want["microast"])
  with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    try:
      page = browser.new_page(viewport={"width": 1400, "height": 1000})
      page.goto(server)
      page.wait_for_selector("#content input[type=file]", state="attached", timeout=60_000)
      assert page.locator("#model input[value=adain]").is_checked()
      for size in ("#content-size", "#style-size"):
        box = page.locator(f"{size} input[type=number]")
        box.fill("0")
        box.press("Enter")
      page.locator("#styles input[type=file]").set_input_files(files["a"])
      page.locator("#content input[type=file]").set_input_files(files["content"])
      src = page.wait_for_selector("#result img", timeout=120_000).get_attribute("src")
      shown = {}
      for model in ("microast", "adain"):
        page.locator("#model").get_by_text(model, exact=True).click()
        shown[model] = results_until(page, src, want[model])
        src = page.locator("#result img").get_attribute("src")
    finally:
      browser.close()
  for model, pixels in want.items():
    np.testing.assert_array_equal(shown[model], pixels)
  client = Client(server, verbose=False)
  got = client.predict(handle_file(files["content"]), handle_file(files["a"]), 1.0, "microast",
                       api_name="/stylize")
  np.testing.assert_array_equal(np.asarray(Image.open(got)),
                                cli(microast_weights, tmp_path / "api", files["content"], [files["a"]]))


def test_api_gives_the_cli_png_and_keeps_serving(server, files, weights, tmp_path):
  """/stylize at the CLI's default sizes; a bad upload gets a message; three calls at once."""
  from gradio_client.exceptions import AppError

  client = Client(server, verbose=False)
  got = client.predict(handle_file(files["content"]), handle_file(files["a"]), 0.7, api_name="/stylize")
  want = cli(weights, tmp_path / "cli", files["content"], [files["a"]], "--alpha", "0.7")
  np.testing.assert_array_equal(np.asarray(Image.open(got)), want)

  bad = tmp_path / "notes.txt"
  bad.write_text("not a picture")
  with pytest.raises(AppError, match="notes.txt: not an image file"):
    client.predict(handle_file(str(bad)), handle_file(files["a"]), 0.7, api_name="/stylize")

  calls = [(files["content"], files["a"], 0.7), (files["content"], files["b"], 0.3),
           (files["a"], files["content"], 1.0)]

  def call(args):
    content, style, alpha = args
    return Client(server, verbose=False).predict(handle_file(content), handle_file(style), alpha,
                                                 api_name="/stylize")

  with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
    outs = list(pool.map(call, calls))
  np.testing.assert_array_equal(np.asarray(Image.open(outs[0])), want)
  shapes = [np.asarray(Image.open(o)).shape for o in outs]
  assert shapes == [want.shape, want.shape, (614, 512, 3)]  # a.png, 48x40: 512 on the short side
  assert os.path.basename(outs[2]) == "a_stylized_photo.png"


def test_live_tab_streams_the_fake_camera(server, debug_frames, files, stylizer, tmp_path):
  """Chromium's fake camera plays a clip; the webcam's button starts the stream: stylized frames
  arrive and change, frames/s is above 0, a still is served meanwhile, and a frame is
  Stylizer.generate of the frame the handler got (written by --debug-frames)."""
  from playwright.sync_api import sync_playwright

  assert CHROMIUM, "the browser test needs Debian's chromium: apt-get install chromium"
  cam = write_y4m(tmp_path / "camera.y4m", frame_images(30, 72, 96))
  flags = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
           f"--use-file-for-fake-video-capture={cam}"]
  newer = "s => { const i = document.querySelector('#live-output img'); return i && i.src && i.src !== s; }"
  with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", *flags])
    try:
      page = browser.new_page(viewport={"width": 1400, "height": 1000})
      page.goto(server)
      page.wait_for_selector("#styles input[type=file]", state="attached", timeout=60_000)
      box = page.locator("#style-size input[type=number]")
      box.fill("64")
      box.press("Enter")
      page.locator("#styles input[type=file]").set_input_files(files["a"])
      page.get_by_role("tab", name="Live").click()
      page.get_by_text("Click to Access Webcam").click()
      page.locator("#live-webcam button[aria-label='capture photo']").click()  # start streaming
      src, shown = None, []
      for _ in range(3):
        page.wait_for_function(newer, arg=src, timeout=120_000)
        src = page.locator("#live-output img").get_attribute("src")
        shown.append(np.asarray(Image.open(io.BytesIO(page.request.get(src).body()))))
      fps = float(re.search(r"([0-9.]+) frames/s", page.locator("#live-fps").inner_text()).group(1))
      # A still meanwhile (its pixels: test_api_gives_the_cli_png_and_keeps_serving), then more frames.
      still = Client(server, verbose=False).predict(handle_file(files["content"]), handle_file(files["a"]),
                                                    0.7, api_name="/stylize")
      page.wait_for_function(newer, arg=src, timeout=120_000)
      page.screenshot(path=tmp_path / "live.png")
    finally:
      browser.close()
  assert fps > 0
  assert re.search(r"/live/[0-9a-f]+-[0-9]{6}\.jpg$", src)  # served from the stream's files, not copied
  assert np.asarray(Image.open(still)).shape == (512, 716, 3)
  assert all(f.shape == (72, 96, 3) for f in shown)  # auto's smallest size, capped at the camera's
  assert not np.array_equal(shown[0], shown[1]) or not np.array_equal(shown[1], shown[2])
  outs = sorted(debug_frames.glob("*-out.png"))
  assert len(outs) >= 4
  style = stylizer.encode_style(images.load_image(files["a"], 64))
  for out in outs[-2:]:
    frame = Image.open(str(out).replace("-out.png", "-in.png"))
    want = images.to_uint8(stylizer.generate(images.from_pil(frame), style))
    assert np.abs(np.asarray(Image.open(out)).astype(int) - want).max() <= 2
  # What the page showed is one of the handler's outputs, as the JPEG Studio.live_file writes.
  assert any(np.array_equal(jpeg(o), shown[-1]) for o in outs)


def jpeg(path) -> np.ndarray:
  data = io.BytesIO()
  Image.open(path).save(data, "jpeg", quality=LIVE_QUALITY)
  return np.asarray(Image.open(data))
