"""The web app's model side, without Gradio: uploads in, stylized PNGs out, codes kept per upload.

Either network (adain.models.NETWORKS) stylizes: each is loaded on first use, and keeps codes of
its own (a code of one never reaches the other).

A person moving the alpha slider or a style weight should wait for AdaIN and the decoder only,
so the decoded images and their content and style codes are kept in small LRU caches keyed by
the file's SHA-256 and the sizes (and, for colour preservation, by what the code depends on).
Live webcam frames reuse the same style codes and take turns with stills on the model (Turns).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from adain.inference import color
from adain.errors import AdainError
from adain.media import images
from adain.models import network
from adain.models.adain.codes import StyleCode
from adain.inference.stylizer import PRESERVE_COLOR, ContentCode, StyleFeatures, Stylizer

CLI_SIZE = 512  # adain.stylize's default --content-size and --style-size
KEEP_RESULTS = 16  # result files kept on disk; Gradio serves its own copies
LIVE_SIZES = (128, 192, 256, 384, 512)  # a live frame's shorter side: the choices, and auto's ladder
FPS_FRAMES = 8  # frames per second are measured over the last few frames
FPS_GAP_S = 3.0  # and afresh after a longer pause (and 3 frames' time)
KEEP_LIVE = 8  # a stream's last frames kept on disk for the page to fetch
LIVE_QUALITY = 90  # their JPEG quality


class _LRU:
  """The last ``size`` values by key; a miss computes the value (errors are not cached)."""

  def __init__(self, size: int):
    self.size, self.items, self.hits = size, collections.OrderedDict(), 0

  def get(self, key, compute: Callable):
    if key in self.items:
      self.items.move_to_end(key)
      self.hits += 1
      return self.items[key]
    value = self.items[key] = compute()
    if len(self.items) > self.size:
      self.items.popitem(last=False)
    return value


@dataclasses.dataclass(frozen=True)
class Result:
  path: Path  # a lossless PNG as adain.stylize --ext png writes it, or a clip's MP4
  summary: str  # one line for the page: size, time, what came from the caches


def _digest(path: str) -> str:
  try:
    st = os.stat(path)
    return _sha256(path, st.st_size, st.st_mtime_ns)
  except OSError as e:
    raise AdainError(path, f"cannot read: {e.strerror or e}") from None


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
  """The file's SHA-256, read once per (path, size, mtime): every slider event asks again."""
  return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _named(e: AdainError) -> AdainError:
  """The error with the file's own name instead of its temporary folder (Gradio keeps uploads
  under their names in folders of their own)."""
  return AdainError(Path(e.path).name, e.problem) if e.path else e


def _names_files(method: Callable) -> Callable:
  """``method`` raising its AdainErrors _named: on the entry points, so the steps inside them
  can name files by their paths."""
  @functools.wraps(method)
  def named(*args, **kwargs):
    try:
      return method(*args, **kwargs)
    except AdainError as e:
      raise _named(e) from None
  return named


def _check(styles: list[str], weights: list[float] | None, preserve_color: str | None) -> None:
  if not styles:
    raise AdainError(None, "add at least one style image")
  if preserve_color not in (None, *PRESERVE_COLOR):
    raise AdainError(None, f"preserve colour must be one of {PRESERVE_COLOR}, not {preserve_color!r}")
  if weights is not None and (len(weights) != len(styles) or not sum(weights) > 0):
    raise AdainError(None, "style weights: one per style, and not all 0")


def _combined(stylizer: Stylizer, codes: list, weights: list[float] | None, masked: bool):
  """The styles' codes as generate takes them: mixed by their weights (equal when None, as
  --style-weights), or both kept for a mask."""
  if len(codes) == 1:
    return codes[0]
  if stylizer.concat:  # its styles are StyleFeatures
    raise AdainError(None, "an Enc-Concat-Dec (concat) decoder takes one style at a time")
  codes = stylizer.concat_codes(codes)
  return codes if masked else codes.mix(weights or [1.0] * len(codes))


class Turns:
  """The model's turns: one job at a time. A still (an image, a clip) waits for its turn; a live
  frame never waits behind a still, running or waiting (it is dropped: the viewer keeps the last
  frame), and waits for at most the frame another viewer's stream is running. So a still waits
  for at most one live frame, and live frames never pile up.
  """

  def __init__(self):
    self.cond = threading.Condition()
    self.holder: str | None = None  # "still", "live" or None
    self.stills_waiting = 0

  @contextlib.contextmanager
  def still(self):
    with self.cond:
      self.stills_waiting += 1
      try:
        self.cond.wait_for(lambda: self.holder is None)
      finally:
        self.stills_waiting -= 1
      self.holder = "still"
    try:
      yield
    finally:
      self._release()

  @contextlib.contextmanager
  def frame(self):
    """Yields whether the frame got the model (False: a still has it or waits for it)."""
    with self.cond:
      self.cond.wait_for(lambda: self.holder != "live" or self.stills_waiting)
      got = self.holder is None and not self.stills_waiting
      if got:
        self.holder = "live"
    try:
      yield got
    finally:
      if got:
        self._release()

  def _release(self) -> None:
    with self.cond:
      self.holder = None
      self.cond.notify_all()


def next_size(size: int, ms: float, target_ms: float, too_slow: int) -> tuple[int, int]:
  """Auto's step on LIVE_SIZES: (size, too_slow) for the next frames, from the median ``ms`` of
  recent frames at ``size``. Down one size when over ``target_ms`` (that size is then too slow
  for the stream: auto does not climb back to it); up one when its predicted time (by pixels)
  fits, and it was not too slow."""
  i = LIVE_SIZES.index(size)
  if ms > target_ms:
    return (LIVE_SIZES[i - 1] if i else size), min(too_slow, size)
  up = LIVE_SIZES[i + 1] if i + 1 < len(LIVE_SIZES) else None
  if up and up < too_slow and ms * (up / size) ** 2 <= target_ms:
    return up, too_slow
  return size, too_slow


@dataclasses.dataclass
class LiveStream:
  """One viewer's live stream (Gradio keeps one per page session): auto's size, the last frame,
  and recent frame times."""

  target_ms: float  # auto keeps a frame's model time under this: the interval frames arrive at
  model: str | None = None  # the network of the last frame
  size: int = LIVE_SIZES[0]  # auto's size; it starts small (the first frame is the quickest)
  too_slow: int = 1 << 30  # the smallest size found over target_ms
  ms: float = 0.0  # the last frame's model time
  hw: tuple[int, int] | None = None  # and its size
  at_size: list[float] = dataclasses.field(default_factory=list)  # ms of auto's frames at size
  done: collections.deque = dataclasses.field(default_factory=lambda: collections.deque(
      maxlen=FPS_FRAMES))  # when recent frames were finished (perf_counter)
  frames: int = 0
  dropped: int = 0
  busy: threading.Lock = dataclasses.field(default_factory=threading.Lock)

  def use(self, model: str) -> None:
    """Auto starts afresh on another network (its speed is another)."""
    if model != self.model:
      self.model, self.size, self.too_slow, self.at_size = model, LIVE_SIZES[0], 1 << 30, []

  @property
  def fps(self) -> float:
    """Frames per second over the recent frames (0 before two)."""
    if len(self.done) < 2:
      return 0.0
    return (len(self.done) - 1) / max(self.done[-1] - self.done[0], 1e-9)

  def record(self, ms: float, auto: bool) -> None:
    """A finished frame; with auto, the size may step (the first frame at a size is left out: it
    may include compiling for it). After a gap (the stream was stopped and started again, or
    paused for a still) frames per second count afresh."""
    self.ms, self.frames = ms, self.frames + 1
    now = time.perf_counter()
    if self.done and now - self.done[-1] > max(FPS_GAP_S, 3 * ms / 1000):
      self.done.clear()
    self.done.append(now)
    if not auto:
      return
    self.at_size.append(ms)
    if len(self.at_size) > 3:
      size = self.size
      self.size, self.too_slow = next_size(size, float(np.median(self.at_size[1:])), self.target_ms,
                                           self.too_slow)
      if self.size != size:
        self.at_size = []
      else:
        del self.at_size[1]


@dataclasses.dataclass
class Model:
  """A loaded network and the codes of recent uploads that it made."""

  stylizer: Stylizer
  content_codes: _LRU
  style_codes: _LRU


def _hits(net: Model) -> int:
  return net.content_codes.hits + net.style_codes.hits


class Studio:
  """The networks, each loaded on first use by ``load`` (a name of adain.models.NETWORKS to a
  Stylizer, raising AdainError when its weights are missing), taking Turns (one job at a time)
  with the codes of recent uploads. ``model``: the one a job without a model of its own uses."""

  def __init__(self, load: Callable[[str], Stylizer], out_dir: str | Path, model: str = "adain",
               cache_size: int = 8, debug_frames: str | Path | None = None):
    self.load_stylizer, self.model, self.cache_size = load, model, cache_size
    self.models: dict[str, Model | AdainError] = {}  # or the error of one whose weights are missing
    self.loading = threading.Lock()
    self.out_dir = Path(out_dir)
    self.debug_frames = Path(debug_frames) if debug_frames else None  # see _keep_frame
    self.live_dir = self.out_dir / "live"
    self.turns = Turns()
    # Decoded images are the largest (a photo at its own size can take hundreds of MB).
    self.images = _LRU(max(cache_size // 2, 1))
    self.results = 0

  def network(self, model: str | None = None) -> Model:
    """The network ``model`` (None: the studio's), loaded on first use. A missing one raises its
    weights' message, the same each time without looking again (a live stream asks per frame)."""
    model = model or self.model
    network(model)  # an unknown name is one line
    with self.loading:
      if model not in self.models:
        try:
          self.models[model] = Model(self.load_stylizer(model), _LRU(self.cache_size), _LRU(self.cache_size))
        except AdainError as e:
          self.models[model] = e
      found = self.models[model]
    if isinstance(found, AdainError):
      raise found
    return found

  def load(self, path: str, size: int) -> tuple[str, np.ndarray]:
    """(key, image) of an uploaded image at ``size`` (0: its own size), as the CLI loads it."""
    key = f"{_digest(path)}:{size}"
    return key, self.images.get(key, lambda: images.load_image(path, size))

  def style_code(self, net: Model, path: str, size: int, method: str | None,
                 content: tuple[str, np.ndarray] | None) -> StyleCode | StyleFeatures:
    """One style's code for ``net``, from an image or an .npz style code (adain.encode_style);
    ``content`` (key, image) is what a preserve-colour ``method`` matches the style to (a key of
    None, a live frame's, is not kept)."""
    if path.lower().endswith(".npz"):
      if method:
        raise AdainError(path, "keeping the content's colours needs the style image, not a style code")
      code = net.style_codes.get(_digest(path), lambda: net.stylizer.load_style_code(path))
      if len(code) != 1:
        raise AdainError(path, f"holds {len(code)} style codes; give one per file")
      return code
    key, img = self.load(path, size)
    def encode():
      return net.stylizer.encode_style(color.style_input(img, content[1], method) if method else img)
    if not method:
      return net.style_codes.get(key, encode)
    # coral and luminance matching make the style's network input depend on the content
    return net.style_codes.get(f"{key}:{method}:{content[0]}", encode) if content[0] else encode()

  def styles(self, net: Model, styles: list[str], weights: list[float] | None, size: int,
             method: str | None, content: tuple[str | None, np.ndarray] | None, masked: bool = False):
    """The styles' codes for ``net`` as generate takes them (see _combined)."""
    return _combined(net.stylizer, [self.style_code(net, s, size, method, content) for s in styles],
                     weights, masked)

  @_names_files
  def stylize(self, content: str, styles: list[str], weights: list[float] | None = None,
              alpha: float = 1.0, content_size: int = CLI_SIZE, style_size: int = CLI_SIZE,
              preserve_color: str | None = None, mask_grey: np.ndarray | None = None,
              model: str | None = None) -> Result:
    """Stylizes ``content`` with ``styles`` mixed by ``weights`` (None: equal), or with a mask
    (grey, any size, > 0.5 = first style) the first style where painted, the second elsewhere,
    with the network ``model`` (None: the studio's).

    With one style, no mask and the CLI's sizes this writes what ``python -m adain.stylize
    --ext png`` writes for the same files and alpha.
    """
    _check(styles, weights, preserve_color)
    if mask_grey is not None and len(styles) != 2:
      raise AdainError(None, f"a painted mask needs exactly two styles (painted, rest), got {len(styles)}")
    net = self.network(model)
    with self.turns.still():
      start, hits = time.perf_counter(), _hits(net)
      key, img = self.load(content, content_size)
      code: ContentCode = net.content_codes.get(f"{key}:{preserve_color == 'luminance'}", lambda:
          net.stylizer.encode_content(img, preserve_color))
      style = self.styles(net, styles, weights, style_size, preserve_color, (key, img), mask_grey is not None)
      mask = None if mask_grey is None else net.stylizer.code_mask(mask_grey, img.shape[:2])
      out = net.stylizer.generate(code, style, alpha, mask)  # the content's colours kept (code)
      path = self._result_path(content, styles, mask is not None, ".png")
      images.save_image(path, out)
      seconds, hits = time.perf_counter() - start, _hits(net) - hits
    h, w = out.shape[:2]
    return Result(path, f"{w}×{h} px in {seconds:.2f} s; {hits} of {len(styles) + 1} codes reused")

  @_names_files
  def stylize_clip(self, src: str, styles: list[str], weights: list[float] | None = None,
                   alpha: float = 1.0, content_size: int = CLI_SIZE, style_size: int = CLI_SIZE,
                   preserve_color: str | None = None,
                   progress: Callable[[int, int | None], object] | None = None,
                   model: str | None = None) -> Result:
    """Stylizes a video file into an MP4 with its sound (adain.pipelines.video, the ``video``
    extra) with the network ``model`` (None: the studio's)."""
    _check(styles, weights, preserve_color)
    if preserve_color and len(styles) != 1:
      raise AdainError(None, "keeping the content's colours in a clip works with one style at a time")
    try:
      from adain.pipelines import video
    except ImportError:
      raise AdainError(None, "stylizing clips needs PyAV: pip install 'adain[video]'") from None
    net = self.network(model)
    with self.turns.still():
      if preserve_color:  # the clip's frames are the content: the style goes as an image
        style = self.load(styles[0], style_size)[1]
      else:
        style = self.styles(net, styles, weights, style_size, None, None)
      path = self._result_path(src, styles, False, ".mp4")
      clip = video.stylize_clip(net.stylizer, src, path, style, alpha=alpha,
                                content_size=content_size, preserve_color=preserve_color,
                                progress=progress)
    return Result(path, f"{clip.frames} frames in {clip.seconds:.1f} s ({clip.fps:.2f} frames/s)")

  @_names_files
  def live_frame(self, stream: LiveStream, frame: Image.Image, styles: list[str],
                 weights: list[float] | None = None, alpha: float = 1.0, size: int = 0,
                 style_size: int = CLI_SIZE, preserve_color: str | None = None,
                 model: str | None = None) -> np.ndarray | None:
    """One webcam frame stylized by the network ``model`` (None: the studio's) as uint8 RGB, its
    shorter side ``size`` (0: auto's, see LiveStream; never more than the frame's own), or None
    when it is dropped: the model is busy with a still, or with this stream's previous frame.
    Style codes are the stills' own, kept per upload; a colour-preserving style is matched to
    each frame.
    """
    _check(styles, weights, preserve_color)
    net = self.network(model)
    if not stream.busy.acquire(blocking=False):  # two streams of one page session
      stream.dropped += 1
      return None
    try:
      with self.turns.frame() as got:
        if not got:
          stream.dropped += 1
          return None
        start = time.perf_counter()
        stream.use(net.stylizer.network)
        img = images.from_pil(frame, min(size or stream.size, *frame.size))
        style = self.styles(net, styles, weights, style_size, preserve_color, (None, img))
        out = net.stylizer.generate(color.content_input(img, preserve_color), style, alpha)
        out = color.output(out, img, preserve_color)
        ms = 1000 * (time.perf_counter() - start)
      stream.hw = out.shape[:2]
      stream.record(ms, auto=not size)
      if self.debug_frames:
        self._keep_frame(stream, frame, out)
      return images.to_uint8(out)
    finally:
      stream.busy.release()

  def live_file(self, stream: LiveStream, frame_u8: np.ndarray) -> Path:
    """A stylized live frame as a JPEG for the page, in the folder ``live_dir``; the stream's
    older ones are removed (ui serves that folder as it is: Gradio would keep a copy of every
    frame in its cache for an hour, gigabytes at a webcam's rate)."""
    self.live_dir.mkdir(parents=True, exist_ok=True)
    name = f"{id(stream):x}-{{:06d}}.jpg"
    path = self.live_dir / name.format(stream.frames)
    Image.fromarray(frame_u8).save(path, quality=LIVE_QUALITY)
    (self.live_dir / name.format(stream.frames - KEEP_LIVE)).unlink(missing_ok=True)
    return path

  def _keep_frame(self, stream: LiveStream, frame: Image.Image, out: np.ndarray) -> None:
    """The app's --debug-frames: each live frame as it came (NNNNNN-in.png) and as it went
    (NNNNNN-out.png, the same bytes), numbered per stream, so a check can redo it."""
    self.debug_frames.mkdir(parents=True, exist_ok=True)
    stem = self.debug_frames / f"{id(stream):x}-{stream.frames:06d}"
    images.save_image(f"{stem}-in.png", images.from_pil(frame))
    images.save_image(f"{stem}-out.png", out)

  def _result_path(self, content: str, styles: list[str], masked: bool, ext: str) -> Path:
    """A new folder per result (named as the CLI names its files); old ones are removed."""
    self.results += 1
    folder = self.out_dir / f"{self.results:06d}"
    folder.mkdir(parents=True)
    old = self.out_dir / f"{self.results - KEEP_RESULTS:06d}"
    shutil.rmtree(old, ignore_errors=True)
    stems = [Path(s).stem for s in styles]
    if len(styles) > 1 and not masked:
      suffix = "interpolation"
    else:
      suffix = "stylized_" + "_".join(stems)
    return folder / f"{Path(content).stem}_{suffix}{ext}"
