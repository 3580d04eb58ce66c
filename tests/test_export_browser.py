"""The page of python -m adain.export --web in Debian's Chromium (Playwright), served on a loopback
port, on WebAssembly: the CLI's pixels, a fake webcam, errors in #status, Pillow's resize, and
no request to any other address."""

from __future__ import annotations

import base64
import shutil

import numpy as np
import pytest
from PIL import Image

from adain.commands import export as export_main
from conftest import write_image
from static_site import ORT_WEB, chromium_args, serve, write_y4m
from test_app import cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CLIP_WH = (160, 120)  # the fake camera's frames


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  d = tmp_path_factory.mktemp("page-inputs")
  bad = d / "notes.png"
  bad.write_text("not a picture")
  return {"content": write_image(d / "photo.png", 96, 128, 1),
          "style": write_image(d / "brush.png", 112, 80, 2),
          "small": write_image(d / "tiny.png", 12, 40, 3),
          "bad": bad}


@pytest.fixture(scope="module")
def site(weights, tmp_path_factory):
  """The exported pair with its page, served on a free loopback port: its URL."""
  assert (ORT_WEB / "package.json").is_file(), \
      "onnxruntime-web is missing: make test installs it (npm install --no-save onnxruntime-web@1.30.0)"
  out = tmp_path_factory.mktemp("site")
  rc = export_main.main(["--vgg", str(weights[0]), "--decoder", str(weights[1]), "--output", str(out),
                         "--web", "--ort-web", str(ORT_WEB)])
  assert rc == 0
  with serve(out) as url:
    yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
  from playwright.sync_api import sync_playwright

  assert CHROMIUM, "the browser test needs Debian's chromium: apt-get install chromium"
  clip = write_y4m(tmp_path_factory.mktemp("camera") / "clip.y4m", *CLIP_WH)
  with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=CHROMIUM, args=chromium_args(clip))
    try:
      yield browser
    finally:
      browser.close()


@pytest.fixture
def page(browser, site):
  """A fresh tab on the page (WebAssembly) that records every request not to the page's server."""
  context = browser.new_context(viewport={"width": 1360, "height": 860})
  tab = context.new_page()
  tab.outside = []
  tab.on("request", lambda r: r.url.startswith((site, "data:", "blob:")) or tab.outside.append(r.url))
  tab.goto(site + "?backend=wasm")
  tab.wait_for_function("document.body.dataset.state !== 'loading'", timeout=120_000)
  try:
    yield tab
  finally:
    context.close()


def status(page) -> str:
  return page.locator("#status").text_content()


def wait_for_status(page, text: str, timeout: float = 120_000) -> None:
  page.wait_for_function("t => document.querySelector('#status').textContent.includes(t)", arg=text,
                         timeout=timeout)


def result_pixels(page, tmp_path) -> np.ndarray:
  """The #download link's PNG, as a user saves it, as RGB."""
  with page.expect_download() as info:
    page.click("#download")
  path = tmp_path / info.value.suggested_filename
  info.value.save_as(path)
  rgba = np.asarray(Image.open(path).convert("RGBA"))
  assert (rgba[..., 3] == 255).all()  # a canvas's PNG has alpha; the picture is opaque
  return rgba[..., :3]


# A weighted sum of #result's bytes: changes when the picture does.
CANVAS_SUM = """(() => {
  const c = document.querySelector('#result');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i] * ((i % 7) + 1);
  return s;
})()"""


def test_pair_gives_the_cli_pixels(page, files, weights, tmp_path):
  """#content, #style, #alpha, #download: the CLI's PNG within 3 levels (0.5 mean), on WASM."""
  assert "WebAssembly" in status(page) and "ready" in status(page)
  page.locator("#alpha").fill("0.6")
  page.locator("#content").set_input_files(files["content"])
  page.locator("#style").set_input_files(files["style"])
  wait_for_status(page, "ms · 128×96")
  assert status(page).startswith("WebAssembly · 1 thread · ")
  got = result_pixels(page, tmp_path)
  want = cli(weights, tmp_path / "cli", str(files["content"]), [str(files["style"])], "--alpha", "0.6",
             "--content-size", "0", "--style-size", "0")
  assert got.shape == want.shape == (96, 128, 3)
  diff = np.abs(got.astype(int) - want)
  assert diff.max() <= 3 and diff.mean() <= 0.5, (diff.max(), diff.mean())
  assert page.locator("#download").get_attribute("download") == "photo_stylized_brush.png"
  page.screenshot(path=tmp_path / "page.png")
  assert page.outside == []


def test_webcam_frames_are_live(page, files, tmp_path):
  """#live with Chromium's fake camera: frames at a size the page shows, #fps above 0, and a
  canvas that changes as the clip plays."""
  page.locator("#style").set_input_files(files["style"])
  wait_for_status(page, "Now choose a content photo")
  page.click("#live")
  page.wait_for_function("parseFloat(document.querySelector('#fps').textContent) > 0", timeout=120_000)
  first = page.evaluate(CANVAS_SUM)
  page.wait_for_function(f"s => {CANVAS_SUM} !== s", arg=first, timeout=120_000)
  assert float(page.locator("#fps").text_content().split()[0]) > 0
  size, line = page.evaluate("[document.querySelector('#live-size').textContent,"
                             " document.querySelector('#status').textContent]")  # one moment
  w, h = (int(v) for v in size.removeprefix("live ").split("×"))  # e.g. "live 160×120": the clip's 4:3
  assert abs(w / h - CLIP_WH[0] / CLIP_WH[1]) < 0.02 and min(w, h) >= 16 and w <= CLIP_WH[0]
  assert line.endswith(f" ms · {w}×{h}")
  page.screenshot(path=tmp_path / "live.png")
  page.click("#live")
  page.wait_for_function("document.querySelector('#live').getAttribute('aria-pressed') === 'false'")
  assert page.outside == []


def test_broken_uploads_get_a_line_and_the_page_keeps_working(page, files, tmp_path):
  page.locator("#content").set_input_files(files["bad"])
  wait_for_status(page, "notes.png: not an image this browser can read")
  page.locator("#style").set_input_files(files["small"])
  wait_for_status(page, "tiny.png: too small (40×12); images need at least 16 pixels a side")
  page.locator("#content").set_input_files(files["content"])
  page.locator("#style").set_input_files(files["style"])
  wait_for_status(page, "ms · 128×96")
  assert page.locator("#status").get_attribute("data-kind") == "ok"
  assert page.outside == []


def test_a_model_that_fails_to_load_is_one_line(browser, site, files):
  context = browser.new_context()
  try:
    tab = context.new_page()
    tab.route("**/generator.onnx", lambda route: route.fulfill(status=404, body="gone"))
    tab.goto(site + "?backend=wasm")
    wait_for_status(tab, "generator.onnx: failed to load (HTTP 404)")
    assert tab.locator("body").get_attribute("data-state") == "failed"
    tab.locator("#content").set_input_files(files["content"])
    wait_for_status(tab, "photo.png: not stylized, the model did not load (generator.onnx: failed to load")
  finally:
    context.close()


def test_resize_is_pillows(page):
  """Images over 512 on the shorter side are scaled as load_image scales them: the sizes and
  Pillow's BILINEAR pixels, exactly, for bytes and for float (transparent) images."""
  from adain.media import images

  def resized(arr: np.ndarray, channels: int, out_wh=None):
    """resize.js on ``arr`` (HWC uint8, or HW float32), to fitSize's size or ``out_wh``."""
    h, w = arr.shape[:2]
    wh, data = page.evaluate("""async ([b64, w, h, channels, out]) => {
      const { fitSize, resize } = await import('./resize.js');
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const src = channels === 3 ? new Uint8ClampedArray(bytes.buffer) : new Float32Array(bytes.buffer);
      const [nw, nh] = out ?? fitSize(w, h, 512);
      const dst = new Uint8Array(resize(src, w, h, channels, nw, nh).buffer);
      let text = '';
      for (let i = 0; i < dst.length; i += 0x8000) {
        text += String.fromCharCode(...dst.subarray(i, i + 0x8000));
      }
      return [[nw, nh], btoa(text)];
    }""", [base64.b64encode(arr.tobytes()).decode(), w, h, channels, out_wh])
    return np.frombuffer(base64.b64decode(data), arr.dtype).reshape(wh[1], wh[0], *arr.shape[2:])

  rng = np.random.default_rng(5)
  for h, w in ((530, 700), (900, 513), (1031, 1031)):
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    want = images.to_uint8(images.from_pil(Image.fromarray(rgb), 512))
    np.testing.assert_array_equal(resized(rgb, 3), want)
  grey = rng.random((600, 520)).astype(np.float32)
  want = np.asarray(Image.fromarray(grey).resize((512, 590), Image.Resampling.BILINEAR))
  np.testing.assert_array_equal(resized(grey, 1, (512, 590)), want)
