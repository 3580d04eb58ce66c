"""The page: Gradio Blocks over a Studio. Only this module and __main__ import gradio."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from adain.app.studio import CLI_SIZE, LIVE_SIZES, LiveStream, Studio
from adain.errors import AdainError
from adain.media import images
from adain.models import NETWORKS

import gradio as gr

ASSETS = resources.files("adain") / "assets"
MAX_STYLES = 4
# The model's events: one job at a time on the model, the rest queue.
MODEL_QUEUE = dict(concurrency_id="model", concurrency_limit=1)
# Live streams: one Gradio event per viewer for as long as it streams, so in a group of their own
# (in "model" a stream would hold the stills' only slot). Their frames take turns on the model
# with the stills in Studio.turns, one frame at a time; Gradio keeps only a stream's newest frame.
LIVE_QUEUE = dict(concurrency_id="live", concurrency_limit=8)
STREAM_EVERY = 1 / 30  # seconds between the frames the browser sends: a webcam's rate
LIVE_SECONDS = 600  # a stream stops after this (press the webcam's button again)
# The camera asked for frames about as tall as the largest live size, not Gradio's 1920x1440:
# each frame comes as a JPEG that the server decodes and scales down (56 ms a frame at 1920x1440,
# 5 ms at 640x480, on 2 cores), for frames of at most 512 px.
CAMERA = gr.WebcamOptions(constraints={"video": {"height": {"ideal": max(LIVE_SIZES)}}})

INTRO = """\
# adain · arbitrary style transfer
Drop a photo and one or more paintings; the result updates as you move the sliders. Several
styles are mixed by their weights. To put styles in places, paint over the content under
*Paint where the first style goes*: painted parts take the first style, the rest the second.
"""

CSS = """
.gradio-container { max-width: 1280px !important; margin: auto; }
#intro p { color: var(--body-text-color-subdued); margin-top: 0; }
#status, #live-fps { min-height: 1.5em; font-size: var(--text-sm); color: var(--body-text-color-subdued); }
#live-output img { width: 100%; height: 100%; object-fit: contain; }
"""


def _as_uploaded(image: gr.Image) -> gr.Image:
  """``image`` handing over the uploaded file as it is: adain reads it as the CLI does, and a
  broken or huge file gets adain's one-line message instead of failing in Gradio's decoding.
  (An instance attribute: a gr.Image subclass would make Gradio write a .pyi beside this file.)"""
  decode = image.preprocess
  image.preprocess = lambda data: data.path if data is not None and data.path else decode(data)
  return image


def _message(e: AdainError) -> gr.Error:
  """An AdainError as a message in the page (no traceback, on the page or in the log)."""
  return gr.Error(str(e), print_exception=False)


def _painted(editor: dict | None) -> np.ndarray | None:
  """The strokes of the mask editor as grey in [0, 1] (their opacity), None when nothing is painted."""
  layers = (editor or {}).get("layers") or []
  alphas = [np.asarray(layer)[..., 3] for layer in layers if np.ndim(layer) == 3]
  if not alphas or not any(a.any() for a in alphas):
    return None
  return np.max(alphas, axis=0).astype(np.float32) / 255.0


def _paths(files) -> list[str]:
  """gr.File(type="filepath") gives paths (str), or None when empty."""
  return list(files or [])


def _weights(styles: list[str], weights) -> list[float] | None:
  return list(weights[:len(styles)]) if len(styles) > 1 else None


def _method(preserve: str) -> str | None:
  return None if preserve == "none" else preserve


def _run(stylize, hint: str, model: str, media, styles, alpha, content_size, style_size, preserve,
         weights, *extra) -> tuple[str | None, str]:
  """A page job (an image or a clip) with the shared controls: ``hint`` until there is something
  to stylize, then (result path, summary), or the error as a message."""
  styles = _paths(styles)
  if not media or not styles:
    return None, hint
  if len(styles) > MAX_STYLES:
    raise gr.Error(f"{len(styles)} styles: the page mixes up to {MAX_STYLES}", print_exception=False)
  try:
    result = stylize(media, styles, _weights(styles, weights), alpha, int(content_size),
                     int(style_size), _method(preserve), *extra, model=model)
  except AdainError as e:
    raise _message(e) from None
  return str(result.path), result.summary


def _live_status(stream: LiveStream, auto: bool, paused: bool) -> str:
  """The Live tab's line: frames per second, the last frame's milliseconds and size."""
  line = f"**{stream.fps:.1f}** frames/s · {stream.ms:.0f} ms a frame"
  if stream.hw:
    line += f" · {stream.hw[1]}×{stream.hw[0]} px" + (" (auto)" if auto else "")
  return line + (" · paused while a still runs" if paused else "")


def build(studio: Studio) -> gr.Blocks:
  """The app: an image tab (with mask painting), a video tab, a live webcam tab, and the
  /stylize API endpoint."""

  def stylize_page(model, content, mask, styles, alpha, content_size, style_size, preserve, *weights):
    return _run(studio.stylize, "Add a content image and at least one style to begin.", model,
                content, styles, alpha, content_size, style_size, preserve, weights, _painted(mask))

  def stylize_video(model, clip, styles, alpha, content_size, style_size, preserve, *weights,
                    progress=gr.Progress()):
    def frames(done, total):
      progress((done, total), desc="Stylizing frames", unit="frames")
    return _run(studio.stylize_clip, "Add a clip and at least one style to begin.", model, clip,
                styles, alpha, content_size, style_size, preserve, weights, frames)

  def model_changed(model):
    """The chosen network loaded (on first use), or its weights' message: then the page's job
    does not run."""
    try:
      studio.network(model)
    except AdainError as e:
      raise _message(e) from None

  def live_frame(model, frame, stream, styles, alpha, style_size, preserve, size, *weights):
    """A webcam frame in, its stylization out, or the last one kept (gr.skip) when it is dropped."""
    stream = stream or LiveStream(target_ms=1000 * STREAM_EVERY)
    styles = _paths(styles)[:MAX_STYLES]
    if frame is None or not styles:
      return gr.skip(), "Add at least one style, then start the webcam.", stream
    auto = size == "auto"
    try:
      out = studio.live_frame(stream, frame, styles, _weights(styles, weights), alpha,
                              0 if auto else int(size), int(style_size), _method(preserve), model)
    except AdainError as e:  # the stream goes on: the styles can be fixed while it runs
      return gr.skip(), str(e), stream
    if out is None:
      return gr.skip(), _live_status(stream, auto, paused=True), stream
    return str(studio.live_file(stream, out)), _live_status(stream, auto, paused=False), stream

  def styles_changed(styles):
    styles = _paths(styles)
    shown = [s for s in styles if not s.lower().endswith(".npz")]
    sliders = [gr.update(visible=len(styles) > 1 and i < len(styles),
                         label=f"Weight · {Path(styles[i]).name}" if i < len(styles) else None)
               for i in range(MAX_STYLES)]
    return gr.update(value=shown or None, visible=bool(shown)), *sliders

  def content_changed(content):
    """The mask editor shows the new content (nothing if it is not an image we read: the
    stylize step that follows says what is wrong with it)."""
    try:
      if content:
        images.load_image(content)
    except AdainError:
      content = None
    return gr.update(value={"background": content, "layers": [], "composite": None} if content else None)

  def stylize(content: str, style: str, alpha: float, model: str) -> str:
    """Stylizes as `python -m adain.stylize --ext png --model MODEL` does with its default
    sizes: a PNG."""
    if not 0.0 <= alpha <= 1.0:
      raise gr.Error(f"alpha must be in [0, 1], got {alpha}", print_exception=False)
    try:
      return str(studio.stylize(content, [style], alpha=alpha, model=model).path)
    except AdainError as e:
      raise _message(e) from None

  studio.live_dir.mkdir(parents=True, exist_ok=True)
  gr.set_static_paths([studio.live_dir])  # served as they are, no copy per frame (Studio.live_file)
  with gr.Blocks(title="adain · style transfer", analytics_enabled=False,
                 delete_cache=(600, 3600)) as app:
    gr.Markdown(INTRO, elem_id="intro")
    with gr.Row(equal_height=False):
      with gr.Column(scale=2, min_width=280):
        model = gr.Radio(list(NETWORKS), value=studio.model, label="Model",
                         info="adain: the paper's; microast: real time on a CPU", elem_id="model")
        styles = gr.File(label="Styles: images or .npz style codes", file_count="multiple",
                         file_types=["image", ".npz"], elem_id="styles")
        gallery = gr.Gallery(show_label=False, columns=4, height=110, object_fit="cover",
                             visible=False, interactive=False, buttons=[], allow_preview=False)
        weights = [gr.Slider(0, 1, value=1.0, step=0.05, visible=False, elem_id=f"weight{i}")
                   for i in range(MAX_STYLES)]
        alpha = gr.Slider(0, 1, value=1.0, step=0.01, label="Alpha",
                          info="0 keeps the content, 1 is full style", elem_id="alpha")
        preserve = gr.Radio(["none", "coral", "luminance"], value="none",
                            label="Keep the content's colours", elem_id="preserve")
        content_size = gr.Slider(0, 2048, value=CLI_SIZE, step=64, label="Content size",
                                 info="shorter side in pixels; 0 keeps the upload's", elem_id="content-size")
        style_size = gr.Slider(0, 2048, value=CLI_SIZE, step=64, label="Style size",
                               info="shorter side in pixels; 0 keeps the upload's", elem_id="style-size")
        run = gr.Button("Stylize", variant="primary")
      with gr.Column(scale=5):
        with gr.Tabs():
          with gr.Tab("Image"):
            with gr.Row(equal_height=True):
              content = _as_uploaded(gr.Image(label="Content", sources=["upload", "webcam", "clipboard"],
                                              type="filepath", format="png", height=420, elem_id="content"))
              result = gr.Image(label="Result", type="filepath", format="png", interactive=False,
                                buttons=["download", "fullscreen"], height=420, elem_id="result")
            status = gr.Markdown(elem_id="status")
            with gr.Accordion("Paint where the first style goes", open=False):
              mask = gr.ImageEditor(label="Mask", type="numpy", sources=[], layers=False,
                                    transforms=[], height=420, elem_id="mask",
                                    brush=gr.Brush(colors=["rgba(255, 64, 64, 0.6)"], color_mode="fixed"))
            gr.Examples([[str(ASSETS / "content.png"), [str(ASSETS / "style.png")]]],
                        inputs=[content, styles], label="Demo pair")
          with gr.Tab("Video"):
            gr.Markdown("The clip is stylized with the styles, weights, alpha, sizes and colour "
                        "setting on the left, frame by frame, and keeps its sound.")
            with gr.Row(equal_height=True):
              clip = gr.Video(label="Clip", sources=["upload"], height=360, elem_id="clip")
              clip_result = gr.Video(label="Stylized clip", interactive=False, height=360,
                                     buttons=["download"], elem_id="clip-result")
            clip_status = gr.Markdown(elem_id="clip-status")
            run_clip = gr.Button("Stylize clip", variant="primary")
          with gr.Tab("Live"):
            gr.Markdown("Your webcam, stylized as it streams with the styles, weights, alpha, style "
                        "size and colour setting on the left. Frames that come while one is being "
                        "stylized are dropped, so the picture is never behind; a smaller frame size "
                        "gives more frames per second.")
            with gr.Row(equal_height=True):
              webcam = gr.Image(label="Webcam", sources=["webcam"], streaming=True, type="pil",
                                height=360, elem_id="live-webcam", webcam_options=CAMERA)
              live = gr.Image(label="Live", interactive=False, height=360,
                              buttons=["fullscreen"], elem_id="live-output")
            live_fps = gr.Markdown(elem_id="live-fps")
            live_size = gr.Radio(["auto", *map(str, LIVE_SIZES)], value="auto", label="Frame size",
                                 info="shorter side in pixels; auto: the largest the device keeps up with",
                                 elem_id="live-size")
            live_stream = gr.State()

    inputs = [model, content, mask, styles, alpha, content_size, style_size, preserve, *weights]
    model_job = dict(fn=stylize_page, inputs=inputs, outputs=[result, status], **MODEL_QUEUE,
                     trigger_mode="always_last", api_visibility="private")
    gr.on([run.click, alpha.change, content_size.change, style_size.change, preserve.change,
           mask.input, *[w.change for w in weights]], **model_job)
    model.change(model_changed, model, None, api_visibility="private", **MODEL_QUEUE).success(**model_job)
    content.change(content_changed, content, mask, queue=False, api_visibility="private").then(**model_job)
    styles.change(styles_changed, styles, [gallery, *weights], queue=False,
                  api_visibility="private").then(**model_job)

    run_clip.click(stylize_video, [model, clip, styles, alpha, content_size, style_size, preserve, *weights],
                   [clip_result, clip_status], **MODEL_QUEUE, api_visibility="private")

    webcam.stream(live_frame, [model, webcam, live_stream, styles, alpha, style_size, preserve, live_size, *weights],
                  [live, live_fps, live_stream], stream_every=STREAM_EVERY, time_limit=LIVE_SECONDS,
                  show_progress="hidden", api_visibility="private", **LIVE_QUEUE)

    # The API: files in, a lossless PNG out (gradio_client: Client(url).predict(..., api_name="/stylize")).
    api_content, api_style = gr.File(visible=False), gr.File(visible=False)
    api_alpha, api_out = gr.Number(1.0, visible=False), gr.File(label="stylized", visible=False)
    api_model = gr.Textbox(studio.model, visible=False)  # --model's unless the call names one
    gr.Button(visible=False).click(stylize, [api_content, api_style, api_alpha, api_model], api_out,
                                   api_name="stylize", **MODEL_QUEUE)
  return app


def launch(app: gr.Blocks, host: str, port: int) -> None:
  """Serves until interrupted. Runs are not recorded in the browser (run_history)."""
  app.launch(server_name=host, server_port=port, css=CSS, theme=gr.themes.Soft(), footer_links=["api"],
             max_file_size="200mb", run_history=False)
