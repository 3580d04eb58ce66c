"""Video beside Stylizer: stylize a clip's frames (an iterator API) or a whole file (stylize_clip).

Style is encoded once; frames go through ``Stylizer.generate`` in batches while background
threads decode the next frames and encode the last ones. Per-frame AdaIN flickers: sensor noise
and small motion change each frame's stylization everywhere. ``stabilize`` pulls each output
pixel towards the previous output where the input did not change there (``steady``); where the
scene moves or cuts, frames stay their own. ``stabilize=0`` turns it off: every frame is then
exactly its still-image result.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from adain.inference import memory
from adain.errors import AdainError, VideoError
from adain.media import images
from adain.inference.stylizer import Stylizer, bucket

# Chosen from tools/video_flicker.py's measurements (README, "Video").
STABILIZE = 0.8
# Input change (0..1 scale, see ``steady``) at which the temporal pull falls to 1/e of its strength.
TAU = 0.05


class ClipSummary(NamedTuple):
  path: Path  # the written file
  frames: int
  seconds: float  # wall time, decoding and encoding included
  fps: float  # frames stylized per second of wall time
  width: int
  height: int
  audio_streams: int


def flicker(frames_thwc: np.ndarray) -> float:
  """Mean absolute difference of consecutive frames: how much a clip changes from frame to frame.

  A stylized clip's flicker relative to its source's is the measure in the README ("Video").
  """
  x = np.asarray(frames_thwc, np.float32)
  return float(np.mean(np.abs(np.diff(x, axis=0))))


def steady(prev_out: np.ndarray, out: np.ndarray, prev_in: np.ndarray, cur_in: np.ndarray,
           strength: float) -> np.ndarray:
  """One step of motion-gated temporal smoothing: out pulled towards the previous output where
  the input did not change.

  The pull is ``strength * exp(-(d / TAU)^2)`` per pixel, d the input's change there (absolute
  frame difference, mean of channels, averaged over a 5 x 5 box so that sensor noise alone does
  not count as change). Where the scene moves or cuts, d is large and the frame is its own
  stylization: no trail of earlier frames (see the README's ghosting check).
  """
  d = _box_mean(np.abs(cur_in - prev_in).mean(axis=-1), 2)
  pull = strength * np.exp(-np.square(d / TAU))
  return out + pull[..., None] * (prev_out - out)


def _box_mean(x_hw: np.ndarray, r: int) -> np.ndarray:
  """Mean over (2r+1) x (2r+1) windows, edges repeated."""
  c = np.pad(x_hw, r + 1, mode="edge").cumsum(0).cumsum(1)
  k = 2 * r + 1
  s = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
  return s[:x_hw.shape[0], :x_hw.shape[1]] / (k * k)


def default_batch(h: int, w: int, net) -> int:
  """Frames per step: as many as fit the default budget in the frames' size bucket for network
  ``net``, at most ``memory.batch_cap()`` (1 on a CPU)."""
  return memory.batch_that_fits(bucket(h), bucket(w), memory.batch_cap(), net)


def stylize_frames(stylizer: Stylizer, frames: Iterable[np.ndarray], style, *, alpha: float = 1.0,
                   mask: np.ndarray | None = None, preserve_color: str | None = None,
                   stabilize: float = STABILIZE, batch: int | None = None,
                   tile: int | None = None, total: int | None = None) -> Iterator[np.ndarray]:
  """Stylized frames, in order, for frames of one size (HWC float32 RGB in [0, 1]).

  ``style``: a style code (two with ``mask``, an (H, W) array in [0, 1] at any resolution, white
  taking the first), or with ``preserve_color`` ("coral", "luminance") a style image. Each
  frame's result with ``stabilize=0`` is exactly ``Stylizer.generate`` (or ``stylize``) of it;
  ``stabilize`` in (0, 1) is the strength of ``steady``. Colour preservation stylizes frame by
  frame (its style code depends on each frame's colours), not in batches. ``batch`` None: from
  the available memory (``default_batch``), at most ``total`` (the frame count, if known).
  """
  if not 0 <= stabilize < 1:
    raise ValueError(f"stabilize must be in [0, 1), got {stabilize}")
  pairs = _stylized(stylizer, frames, style, alpha, mask, preserve_color, batch, tile, total)
  yield from steadied(pairs, stabilize)


def steadied(pairs: Iterable[tuple[np.ndarray, np.ndarray]], strength: float) -> Iterator[np.ndarray]:
  """Outputs of (input frame, its stylization) pairs in order, through ``steady`` (0: as they are)."""
  prev_in = prev_out = None
  for cur_in, out in pairs:
    if strength > 0 and prev_out is not None:
      out = steady(prev_out, out, prev_in, cur_in, strength)
    prev_in, prev_out = cur_in, out
    yield out


def _stylized(stylizer, frames, style, alpha, mask, preserve_color, batch, tile, total) -> Iterator[tuple]:
  """(frame, its still-image stylization) in order, frames batched when the style is a code."""
  if preserve_color is not None:
    for frame in frames:
      yield frame, stylizer.stylize(frame, style, alpha, preserve_color, tile=tile)
    return
  pending: list[np.ndarray] = []
  mask_code = None

  def flush() -> Iterator[tuple]:
    # The last batch is filled up with its last frame: one compiled shape for the whole clip.
    full = np.stack(pending + pending[-1:] * (batch - len(pending)))
    yield from zip(pending, stylizer.generate(full, style, alpha, mask_code, tile))
    pending.clear()

  for frame in frames:
    if mask is not None and mask_code is None:
      mask_code = stylizer.code_mask(mask, frame.shape[:2])
    batch = batch or min(default_batch(*frame.shape[:2], stylizer.net), total or memory.MAX_BATCH)
    pending.append(frame)
    if len(pending) == batch:
      yield from flush()
  if pending:
    yield from flush()


def stylize_clip(stylizer: Stylizer, src: str | os.PathLike, dst: str | os.PathLike, style, *,
                 alpha: float = 1.0, content_size: int = 512, mask: np.ndarray | None = None,
                 preserve_color: str | None = None, stabilize: float = STABILIZE, crf: int = 18,
                 batch: int | None = None, tile: int | None = None,
                 progress: Callable[[int, int | None], Any] | None = None,
                 crop: bool = False) -> ClipSummary:
  """Stylizes the video file ``src`` into the MP4 ``dst``, with src's timestamps and sound.

  Frames are read upright and resized (``content_size``: shorter side, 0 keeps it; ``crop``)
  as still images are; ``style``, ``mask``, ``preserve_color``, ``stabilize``, ``batch`` and
  ``tile`` are as in ``stylize_frames``; ``crf`` as in ``media.video.write_video`` (0:
  lossless). ``progress(frames_done, frames_total)`` is called from this thread after each
  frame (frames_total None when the container does not say). Decoding and encoding run in
  background threads. On any error or interrupt nothing is left at ``dst``; errors name ``src``
  (reading, stylizing) or ``dst`` (writing).
  """
  from adain.media import video_io as video

  start = time.perf_counter()
  with video.VideoReader(src, content_size, crop) as reader:
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(maxsize=2 * memory.MAX_BATCH)
    decoder = threading.Thread(target=_produce, args=(reader, decoded, stop), daemon=True)
    timestamps: deque[int] = deque()
    encoded: queue.Queue = queue.Queue(maxsize=2 * memory.MAX_BATCH)
    pool = ThreadPoolExecutor(max_workers=1)
    decoder.start()
    writer = pool.submit(video.write_video, dst, _consume(encoded), reader.time_base, reader.fps,
                         crf, src)
    alive = lambda: not writer.done()  # noqa: E731
    done = 0

    def images_in() -> Iterator[np.ndarray]:
      for img, pts in _consume(decoded):
        timestamps.append(pts)
        yield img

    try:
      try:
        for out in stylize_frames(stylizer, images_in(), style, alpha=alpha, mask=mask,
                                  preserve_color=preserve_color, stabilize=stabilize,
                                  batch=batch, tile=tile, total=reader.frames):
          if not _put(encoded, video.Frame(images.to_uint8(out), timestamps.popleft()), alive):
            break  # the writer failed: its error is raised below
          done += 1
          if progress is not None:
            progress(done, reader.frames)
      except AdainError as e:  # the Stylizer's errors do not know the file
        raise (e if e.path is not None else VideoError(src, e.problem)) from None
      _put(encoded, _END, alive)
    except BaseException:
      _put(encoded, _Failed(VideoError(dst, "stopped")), alive)
      raise
    finally:
      stop.set()
      pool.shutdown()
      decoder.join()
    w, h = writer.result()
    seconds = time.perf_counter() - start
    return ClipSummary(Path(dst), done, seconds, done / max(seconds, 1e-9), w, h,
                       reader.audio_streams)


_END = object()


class _Failed(NamedTuple):
  error: BaseException


def _put(q: queue.Queue, item, alive: Callable[[], bool]) -> bool:
  """Puts an item while the other side is there to take it (else False)."""
  while alive():
    try:
      q.put(item, timeout=0.1)
      return True
    except queue.Full:
      pass
  return False


def _consume(q: queue.Queue) -> Iterator:
  """Items until _END; a _Failed item raises its error here."""
  while (item := q.get()) is not _END:
    if isinstance(item, _Failed):
      raise item.error
    yield item


def _produce(items: Iterable, q: queue.Queue, stop: threading.Event) -> None:
  """Thread body: feeds items to q, then _END, or _Failed with the error; quits when stopped."""
  running = lambda: not stop.is_set()  # noqa: E731
  try:
    for item in items:
      if not _put(q, item, running):
        return
    _put(q, _END, running)
  except BaseException as e:  # noqa: BLE001  (handed to the consuming thread)
    _put(q, _Failed(e), running)
