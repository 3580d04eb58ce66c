"""The page of python -m adain.export --web in Debian's Chromium (Playwright), served on a loopback
port, on WebAssembly: the CLI's pixels, a fake webcam, errors in #status, Pillow's resize, and
no request to any other address; on WebGPU (Chromium's software adapter): the CLI's pixels, and
the fallback to WebAssembly when WebGPU fails to load or to run. The MicroAST pair's page: ONNX
Runtime's pixels and live frames, on WebAssembly."""

from __future__ import annotations

import base64
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from adain.commands import export as export_main
from conftest import cli, write_image
from static_site import ORT_WEB, chromium_args, serve, serve_isolated, write_y4m

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CLIP_WH = (160, 120)  # the fake camera's frames

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # Chromium and npm's onnxruntime-web


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  d = tmp_path_factory.mktemp("page-inputs")
  bad = d / "notes.png"
  bad.write_text("not a picture")
  return {"content": write_image(d / "photo.png", 96, 128, 1),
          "style": write_image(d / "brush.png", 112, 80, 2),
          "small": write_image(d / "tiny.png", 12, 40, 3),
          "little": write_image(d / "little.png", 36, 48, 4),  # a pair the software adapter runs in seconds
          "square": write_image(d / "square.png", 32, 32, 5),
          "bad": bad}


@pytest.fixture(scope="module")
def little_cli(weights, files, tmp_path_factory):
  """The CLI's PNG for the little pair at alpha 0.6."""
  return cli(weights, tmp_path_factory.mktemp("cli"), str(files["little"]), [str(files["square"])],
             "--alpha", "0.6", "--content-size", "0", "--style-size", "0")


@pytest.fixture(scope="module")
def exported(weights, tmp_path_factory):
  """The exported pair with its page: the folder."""
  assert (ORT_WEB / "package.json").is_file(), \
      "onnxruntime-web is missing: make test installs it (npm install --no-save onnxruntime-web@1.30.0)"
  out = tmp_path_factory.mktemp("site")
  rc = export_main.main(["--vgg", str(weights[0]), "--decoder", str(weights[1]), "--output", str(out),
                         "--web", "--ort-web", str(ORT_WEB)])
  assert rc == 0
  return out


@pytest.fixture(scope="module")
def exported_microast(microast_weights, tmp_path_factory):
  """The MicroAST pair (seeded weights) with its page: the folder."""
  out = tmp_path_factory.mktemp("site-microast")
  rc = export_main.main(["--model", "microast", "--weights", str(microast_weights), "--output", str(out),
                         "--web", "--ort-web", str(ORT_WEB)])
  assert rc == 0
  return out


@pytest.fixture(scope="module")
def site(exported):
  """The page served on a free loopback port with no COOP/COEP headers: its URL."""
  with serve(exported) as url:
    yield url


@pytest.fixture(scope="module")
def microast_site(exported_microast):
  with serve(exported_microast) as url:
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
def open_page(browser, site):
  """Opens the page with a query (and a script run before the page's own) in fresh tabs that
  record every request not to the page's server; returns the tab once the model has loaded."""
  contexts = []

  def open_(query: str, init_script: str | None = None, root: str = site):
    context = browser.new_context(viewport={"width": 1360, "height": 860})
    contexts.append(context)
    if init_script:
      context.add_init_script(init_script)
    tab = context.new_page()
    tab.outside = []
    tab.on("request", lambda r: r.url.startswith((root, "data:", "blob:")) or tab.outside.append(r.url))
    tab.goto(root + query)
    tab.wait_for_function("document.body.dataset.state !== 'loading'", timeout=120_000)
    return tab

  try:
    yield open_
  finally:
    for context in contexts:
      context.close()


@pytest.fixture
def page(open_page):
  """A fresh tab on the page on WebAssembly."""
  return open_page("?backend=wasm")


# WebGPU broken on purpose before the page's script runs: at load (no device, so no session) or
# at the first run (no compute pipeline, as with a kernel the backend lacks).
BREAK_WEBGPU = {
    "load": "GPUAdapter.prototype.requestDevice = () => Promise.reject(new Error('broken on purpose'));",
    "run": "GPUDevice.prototype.createComputePipeline = () => { throw new Error('broken on purpose'); };"
           "GPUDevice.prototype.createComputePipelineAsync = () => Promise.reject(new Error('broken on purpose'));",
}


def status(page) -> str:
  return page.locator("#status").text_content()


def wait_for_status(page, text: str, timeout: float = 120_000) -> None:
  page.wait_for_function("t => document.querySelector('#status').textContent.includes(t)", arg=text,
                         timeout=timeout)


def badge(page) -> str:
  return page.locator("#backend").text_content()


def stylize(page, content, style, alpha: str) -> None:
  """A pair through #alpha, #content and #style, until #status shows the result's size."""
  w, h = Image.open(content).size
  page.locator("#alpha").fill(alpha)
  page.locator("#content").set_input_files(content)
  page.locator("#style").set_input_files(style)
  wait_for_status(page, f"ms · {w}×{h}", timeout=300_000)


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
  """Within 3 levels of 255, 0.5 on average: float32 kernels other than XLA's."""
  assert got.shape == want.shape
  diff = np.abs(got.astype(int) - want)
  assert diff.max() <= 3 and diff.mean() <= 0.5, (diff.max(), diff.mean())


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
  assert status(page).startswith("WebAssembly · 1 thread · not crossOriginIsolated") and "ready" in status(page)
  stylize(page, files["content"], files["style"], "0.6")
  assert status(page).startswith("WebAssembly · 1 thread · ")
  want = cli(weights, tmp_path / "cli", str(files["content"]), [str(files["style"])], "--alpha", "0.6",
             "--content-size", "0", "--style-size", "0")
  assert want.shape == (96, 128, 3)
  assert_close(result_pixels(page, tmp_path), want)
  assert page.locator("#download").get_attribute("download") == "photo_stylized_brush.png"
  page.screenshot(path=tmp_path / "page.png")
  assert page.outside == []


def test_webgpu_gives_the_cli_pixels(open_page, files, little_cli, tmp_path):
  """?backend=webgpu on Chromium's software adapter: the little pair, the CLI's PNG."""
  page = open_page("?backend=webgpu")
  assert status(page) == "WebGPU · ready: choose a content photo and a style image"
  stylize(page, files["little"], files["square"], "0.6")
  assert status(page).startswith("WebGPU · ") and badge(page) == "WebGPU"
  assert_close(result_pixels(page, tmp_path), little_cli)
  page.screenshot(path=tmp_path / "webgpu.png")
  assert page.outside == []


@pytest.mark.parametrize("when", ["load", "run"])
def test_webgpu_that_fails_falls_back_to_webassembly(open_page, files, little_cli, tmp_path, when):
  """The page picks WebGPU by itself; broken, it says why, and the same pair is stylized on
  WebAssembly, with the CLI's pixels."""
  page = open_page("", BREAK_WEBGPU[when])
  if when == "load":
    assert status(page).startswith("WebAssembly · 1 thread · not crossOriginIsolated")
    assert status(page).endswith(" · WebGPU failed: encoder.onnx: failed to load on webgpu "
                                 "(no available backend found. ERR: [webgpu] Error: broken on purpose)")
  else:
    assert badge(page) == "WebGPU"
  stylize(page, files["little"], files["square"], "0.6")
  line = status(page)
  assert line.startswith("WebAssembly · 1 thread · ") and "ms · 48×36 · WebGPU failed: " in line, line
  assert line.endswith("broken on purpose)" if when == "load" else "broken on purpose"), line
  assert badge(page) == "WebAssembly · 1 thread"
  assert "broken on purpose" in page.locator("#backend").get_attribute("title")
  assert_close(result_pixels(page, tmp_path), little_cli)
  page.screenshot(path=tmp_path / f"fallback-{when}.png")
  assert page.outside == []


def test_forced_webgpu_does_not_fall_back(open_page, files):
  page = open_page("?backend=webgpu", BREAK_WEBGPU["run"])
  page.locator("#style").set_input_files(files["square"])
  wait_for_status(page, "error: ")
  assert "broken on purpose" in status(page) and badge(page) == "WebGPU"


@pytest.mark.parametrize("query,broken,shown", [
    ("?backend=wasm", None, "WebAssembly · 1 thread"),
    ("?backend=webgpu", None, "WebGPU"),
    ("", None, "WebGPU"),  # the browser offers an adapter: the page takes it
    ("", "load", "WebAssembly · 1 thread"),
])
def test_badge_names_the_backend_in_use(open_page, query, broken, shown):
  page = open_page(query, BREAK_WEBGPU.get(broken))
  assert badge(page) == shown


def test_served_by_adain_export_serve_webassembly_runs_threads(open_page, exported, files, little_cli,
                                                              tmp_path):
  """python -m adain.export.serve's headers make the page cross-origin isolated: WebAssembly on
  min(4, cores) threads, more than one, and the CLI's pixels still."""
  with serve_isolated(exported) as root:
    page = open_page("?backend=wasm", root=root)
    isolated, threads = page.evaluate("[self.crossOriginIsolated, Math.min(4, navigator.hardwareConcurrency)]")
    assert isolated and threads > 1, "needs a machine of 2 cores or more"
    label = f"WebAssembly · {threads} threads"
    assert status(page) == f"{label} · crossOriginIsolated · ready: choose a content photo and a style image"
    stylize(page, files["little"], files["square"], "0.6")
    assert status(page).startswith(f"{label} · ") and badge(page) == label
    assert_close(result_pixels(page, tmp_path), little_cli)
    assert page.outside == []
    page.context.close()  # before the server stops


def test_microast_pair_gives_onnx_runtimes_pixels(open_page, microast_site, exported_microast, files,
                                                  tmp_path):
  """The MicroAST page (models.json says so) at alpha 0.6: ONNX Runtime's (CPU) pixels of the
  same pair within 1 level, on WebAssembly; its own smallest side (5) in the error line."""
  import onnxruntime as ort

  from adain.media import images

  page = open_page("?backend=wasm", root=microast_site)
  page.locator("#style").set_input_files(files["small"])  # 40x12: too small for AdaIN, not MicroAST
  wait_for_status(page, "Now choose a content photo")
  stylize(page, files["content"], files["style"], "0.6")
  encoder, generator = (ort.InferenceSession(str(exported_microast / f"{n}.onnx"),
                                             providers=["CPUExecutionProvider"]) for n in ("encoder", "generator"))
  spec = json.loads((exported_microast / "models.json").read_text())
  codes = {side: dict(zip([o.name for o in encoder.get_outputs()],
                          encoder.run(None, {"image": images.load_image(str(files[side]))[None]})))
           for side in ("content", "style")}
  feeds = {name: codes[side][out] for name, (side, out) in spec["generator"]["feeds"].items()}
  image = generator.run(None, {**feeds, "alpha": np.array(0.6, np.float32)})[0][0, :96, :128]
  diff = np.abs(result_pixels(page, tmp_path).astype(int) - images.to_uint8(image))
  assert diff.max() <= 1, (diff.max(), diff.mean())
  page.screenshot(path=tmp_path / "microast.png")
  assert page.outside == []


@pytest.mark.parametrize("network", ["adain", "microast"])
def test_webcam_frames_are_live(open_page, site, microast_site, files, tmp_path, network):
  """#live with Chromium's fake camera: frames at a size the page shows, #fps above 0, and a
  canvas that changes as the clip plays."""
  page = open_page("?backend=wasm", root=site if network == "adain" else microast_site)
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
  stylize(page, files["content"], files["style"], "1")
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
