"""Video files: frames in, upright and resized as still images are, with their timestamps; H.264
MP4 out with the source's sound. PyAV (the ``video`` extra) carries FFmpeg: no system ffmpeg.

Every failure a user can cause (empty, truncated, not a video, audio only, too large, broken
mid-way) becomes one VideoError line naming the file; the output is written under a temporary
name in its folder and renamed only once complete.
"""

from __future__ import annotations

import fractions
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from adain.errors import AdainError, VideoError, one_line
from adain.files import atomic_path
from adain.media import images

# Audio codecs an MP4 holds as they are (stream copy); anything else is re-encoded to AAC.
MP4_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"})
AAC_BITRATE = 192_000

# Container signatures (offset, bytes): how a video is told from an image, whatever its name.
_MAGIC = (
    (4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"free"), (4, b"wide"), (4, b"skip"),  # MP4, MOV
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska, WebM
    (0, b"OggS"), (0, b"FLV"),
    (0, b"\x00\x00\x01\xba"), (0, b"\x00\x00\x01\xb3"),  # MPEG program stream, elementary video
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"),  # ASF, WMV
)


def _av():
  try:
    import av
  except ImportError:
    raise AdainError(None, "video needs PyAV: pip install 'adain[video]' (or pip install av)") from None
  av.logging.set_level(None)  # FFmpeg's own log lines would break our one-line errors
  return av


def is_video(path: str | os.PathLike) -> bool:
  """Whether the file starts like a video container (MP4/MOV, MKV/WebM, AVI, MPEG-PS/TS, ...).

  By content, not by name; a file this says no to is read as an image, whose reader then names
  what it is. Audio-only containers of these kinds (.m4a, .ogg) count as videos and are refused
  by ``VideoReader`` as having no video stream.
  """
  try:
    with open(path, "rb") as f:
      head = f.read(16)
      f.seek(188)
      ts = f.read(1)
  except OSError:
    return False
  if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
    return True
  if head[:1] == b"\x47" and ts == b"\x47":  # MPEG transport stream: 188-byte packets
    return True
  return any(head[at:at + len(sig)] == sig for at, sig in _MAGIC)


class VideoReader:
  """Opens a clip and checks it; iterating yields its frames as (image, pts).

  Images are float32 RGB in [0, 1], upright (the rotation metadata applied) and resized and
  cropped exactly as ``images.load_image`` does a still image of the same pixels. ``pts`` is
  each frame's timestamp in ``time_base`` units, as stored (variable frame rate kept).
  """

  def __init__(self, path: str | os.PathLike, size: int = 0, crop: bool = False):
    av = _av()
    self.path, self.size, self.crop = Path(path), size, crop
    if self.path.is_dir():
      raise VideoError(path, "is a folder, not a video file")
    try:
      if self.path.stat().st_size == 0:
        raise VideoError(path, "file is empty (0 bytes)")
      self._container = av.open(os.fspath(path))
    except FileNotFoundError:
      raise VideoError(path, "no such file") from None
    except (av.error.FFmpegError, OSError, ValueError) as e:
      raise VideoError(path, f"not a readable video ({_problem(e)})") from None
    streams = self._container.streams
    # Cover art (an audio file's picture) is a video stream of one frame, not a video.
    pictures = [s for s in streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not pictures:
      kind = "audio only" if streams.audio else "no streams we read"
      self._container.close()  # streams are freed with it
      raise VideoError(path, f"has no video stream ({kind})")
    self._stream = pictures[0]
    self._stream.thread_type = "AUTO"
    ctx = self._stream.codec_context
    self.width, self.height = ctx.width, ctx.height
    limit = Image.MAX_IMAGE_PIXELS
    if self.width <= 0 or self.height <= 0:
      self._container.close()
      raise VideoError(path, "video stream has no frame size (corrupt header)")
    if limit is not None and self.width * self.height > limit:
      self._container.close()
      raise VideoError(path, f"frames too large ({self.width}x{self.height}, limit {limit} pixels)")
    self.time_base: fractions.Fraction = self._stream.time_base or fractions.Fraction(1, 90000)
    self.fps: fractions.Fraction | None = self._stream.average_rate or self._stream.guessed_rate
    self.frames: int | None = self._stream.frames or None  # as declared by the container
    self.audio_streams = len(streams.audio)

  def close(self) -> None:
    self._container.close()

  def __enter__(self) -> "VideoReader":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def __iter__(self) -> Iterator[tuple[np.ndarray, int]]:
    av = _av()
    step = max(1, round(1 / (self.fps * self.time_base))) if self.fps else 1
    n, last = 0, None
    try:
      for frame in self._container.decode(self._stream):
        # A frame without a timestamp follows its predecessor by one nominal frame duration.
        pts = frame.pts if frame.pts is not None else (0 if last is None else last + step)
        yield self._upright(frame), pts
        n, last = n + 1, pts
    except (av.error.FFmpegError, OSError) as e:
      raise VideoError(self.path, f"decoding failed after {n} frame(s) ({_problem(e)})") from None
    if n == 0:
      raise VideoError(self.path, "no frame could be decoded (truncated or corrupt)")
    if self.frames is not None and n < self.frames:  # FFmpeg stops quietly at a cut-off file's end
      raise VideoError(self.path, f"truncated or broken: only {n} of its {self.frames} frames "
                       "could be decoded")

  def _upright(self, frame) -> np.ndarray:
    im = frame.to_image()  # RGB, 8 bits
    turns = round((frame.rotation or 0) / 90) % 4  # counter-clockwise, as np.rot90
    if turns:
      im = im.transpose((None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180,
                         Image.Transpose.ROTATE_270)[turns])
    return images.from_pil(im, self.size, self.crop, self.path)


class Frame(NamedTuple):
  image_hw3: np.ndarray  # float32 in [0, 1], or uint8
  pts: int


def even(img_hw3: np.ndarray) -> np.ndarray:
  """Pads an odd height or width by repeating the last row or column (4:2:0 needs even sides)."""
  h, w = img_hw3.shape[:2]
  if h % 2 or w % 2:
    img_hw3 = np.pad(img_hw3, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
  return img_hw3


def write_video(path: str | os.PathLike, frames: Iterable[Frame], time_base: fractions.Fraction,
                fps: fractions.Fraction | None, crf: int = 18,
                audio_from: str | os.PathLike | None = None) -> tuple[int, int]:
  """Encodes frames as H.264 in an MP4 (moov first: "faststart"), with ``audio_from``'s sound.

  ``crf`` 1..51 writes yuv420p (plays everywhere); 0 writes lossless RGB (libx264rgb), so that
  each decoded frame is exactly the one given. Odd sides are padded (``even``). Audio streams
  are copied where MP4 holds their codec, else re-encoded to AAC. The file is written under a
  temporary name and renamed once complete; on any failure or interrupt nothing is left.
  Returns the encoded (width, height): the frames' size, padded to even sides.
  """
  av = _av()
  path = Path(path)
  with atomic_path(path) as tmp:
    try:
      out = av.open(os.fspath(tmp), "w", format="mp4", options={"movflags": "+faststart"})
    except (av.error.FFmpegError, OSError) as e:
      raise VideoError(path, f"cannot write: {_problem(e)}") from None
    return _encode(av, out, path, frames, time_base, fps, crf, audio_from)


def _encode(av, out, path: Path, frames, time_base, fps, crf, audio_from) -> tuple[int, int]:
  """write_video's encoding into the open container ``out``, which it closes."""
  src, closed = None, False
  try:
    stream, last = None, None
    src = av.open(os.fspath(audio_from)) if audio_from is not None else None
    audio = _AudioCopy(av, src, out) if src is not None and src.streams.audio else None
    for img, pts in frames:
      data = even(images.to_uint8(img) if img.dtype != np.uint8 else img)
      if stream is None:
        stream = _video_stream(out, data.shape, time_base, fps, crf)
      pts = pts if last is None or pts > last else last + 1  # the encoder needs them increasing
      frame = av.VideoFrame.from_ndarray(data, format="rgb24")
      frame.pts, frame.time_base, last = pts, time_base, pts
      for packet in stream.encode(frame):
        if audio is not None:
          audio.mux_until(packet.pts * packet.time_base)
        out.mux(packet)
    if stream is None:
      raise VideoError(path, "no frames to write")
    out.mux(stream.encode())
    if audio is not None:
      audio.mux_until(None)
    size = stream.width, stream.height
    out.close()
    closed = True
    return size
  except av.error.FFmpegError as e:
    raise VideoError(path, f"encoding failed ({_problem(e)})") from None
  finally:
    if src is not None:
      src.close()
    if not closed:
      out.close()


def _video_stream(out, shape, time_base, fps, crf: int):
  lossless = crf == 0
  stream = out.add_stream("libx264rgb" if lossless else "libx264", rate=fps,
                          options={"crf": str(crf)})
  stream.height, stream.width = shape[:2]
  stream.pix_fmt = "rgb24" if lossless else "yuv420p"
  stream.codec_context.time_base = time_base  # the source's: every timestamp kept as it was
  stream.time_base = time_base
  return stream


class _AudioCopy:
  """The source's audio streams, muxed in step with the video (copied, or re-encoded to AAC)."""

  def __init__(self, av, src, out):
    self._av, self._out, self._map = av, out, {}
    for s in src.streams.audio:
      if s.codec_context.codec.canonical_name in MP4_AUDIO:  # "mp3", not its decoder "mp3float"
        self._map[s.index] = (out.add_stream_from_template(s), False)
      else:
        enc = out.add_stream("aac", rate=s.codec_context.sample_rate, layout=s.codec_context.layout)
        enc.bit_rate = AAC_BITRATE
        self._map[s.index] = (enc, True)
    self._packets = src.demux(src.streams.audio)
    self._pending, self._done, self._flushed = None, False, False

  def mux_until(self, t) -> None:
    """Muxes source audio up to time t in seconds (None: all of it, then flushes encoders)."""
    while not self._done:
      if self._pending is None:
        self._pending = next(self._packets, None)
        if self._pending is None:
          self._done = True
          break
      packet = self._pending
      if t is not None and packet.dts is not None and packet.dts * packet.time_base > t:
        return
      self._pending = None
      self._mux(packet)
    if t is None and not self._flushed:
      self._flushed = True
      for stream, encode in self._map.values():
        if encode:
          self._out.mux(stream.encode())

  def _mux(self, packet) -> None:
    stream, encode = self._map[packet.stream.index]
    if not encode:
      if packet.dts is not None:  # demuxers end each stream with an empty packet
        packet.stream = stream
        self._out.mux(packet)
      return
    for frame in packet.decode():
      frame.pts = None  # the encoder counts samples itself
      self._out.mux(stream.encode(frame))


def _problem(e: BaseException) -> str:
  """FFmpeg's reason without the errno and file name that PyAV adds to it."""
  return getattr(e, "strerror", None) or one_line(e)
