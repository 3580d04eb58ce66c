"""Tiny clips for the video tests, written with PyAV directly (not with adain's writer)."""

from __future__ import annotations

import fractions

import av
import numpy as np


def frame_images(n: int, h: int, w: int, seed: int = 0) -> list[np.ndarray]:
  """n uint8 RGB frames: a smooth picture moving one pixel a frame, plus noise."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w + n]
  base = np.stack([xx / (w + n), yy / h, 0.5 + 0.5 * np.sin(xx / 5.0) * np.cos(yy / 7.0)], -1)
  out = []
  for i in range(n):
    img = base[:, i:i + w] + 0.05 * rng.standard_normal((h, w, 3))
    out.append((np.clip(img, 0, 1) * 255).astype(np.uint8))
  return out


def write_clip(path, frames: list[np.ndarray], pts: list[int] | None = None, time_base=(1, 1000),
               rate: int = 25, codec: str = "libx264", pix_fmt: str = "yuv420p", rotation: int = 0,
               audio: str | None = None, container: str = "mp4", audio_seconds: float = 1.0):
  """Writes frames at the given pts (default: 1/rate apart) with an optional audio track
  (``audio`` an encoder name: "aac", "pcm_s16le", "mp3", ...) and display rotation.
  libx264rgb is written lossless: its frames decode exactly to the given ones."""
  tb = fractions.Fraction(*time_base)
  pts = pts if pts is not None else [round(i / rate / tb) for i in range(len(frames))]
  with av.open(str(path), "w", format=container) as out:
    if frames:  # no frames: an audio-only file
      v = out.add_stream(codec, rate=rate, options={"crf": "0"} if codec == "libx264rgb" else {})
      v.height, v.width = frames[0].shape[:2]
      v.pix_fmt = pix_fmt
      v.codec_context.time_base = tb
      v.time_base = tb
      if rotation:
        v.set_display_rotation(rotation)
    a = out.add_stream(audio, rate=16000, layout="mono") if audio else None
    for img, p in zip(frames, pts):
      f = av.VideoFrame.from_ndarray(img, format="rgb24")
      f.pts, f.time_base = p, tb
      out.mux(v.encode(f))
    if frames:
      out.mux(v.encode())
    if a is not None:
      samples = int(16000 * audio_seconds)
      tone = (0.3 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 16000)).astype(np.float32)
      for start in range(0, samples, 1024):
        af = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="flt", layout="mono")
        af.sample_rate, af.pts = 16000, start
        out.mux(a.encode(af))
      out.mux(a.encode())
  return path


def read_clip(path):
  """(RGB uint8 frames, pts in seconds, audio codec names) of a file, decoded with PyAV."""
  with av.open(str(path)) as c:
    s = c.streams.video[0]
    frames, times = [], []
    for f in c.decode(s):
      frames.append(f.to_ndarray(format="rgb24"))
      times.append(float(f.pts * s.time_base))
    return frames, times, [a.codec_context.name for a in c.streams.audio]


def write_y4m(path, frames: list[np.ndarray], rate: int = 30):
  """uint8 RGB frames (even sides) as a YUV4MPEG2 clip, the fake camera file Chromium plays
  (--use-file-for-fake-video-capture): a text header, then each frame as raw I420 (full-range
  BT.601, chroma averaged over 2x2)."""
  h, w = frames[0].shape[:2]
  with open(path, "wb") as f:
    f.write(f"YUV4MPEG2 W{w} H{h} F{rate}:1 Ip A1:1 C420jpeg\n".encode())
    for img in frames:
      r, g, b = np.moveaxis(img.astype(np.float32), -1, 0)
      y = 0.299 * r + 0.587 * g + 0.114 * b
      u = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
      v = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
      planes = [y] + [c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)) for c in (u, v)]
      f.write(b"FRAME\n" + b"".join(np.clip(p + 0.5, 0, 255).astype(np.uint8).tobytes() for p in planes))
  return path
