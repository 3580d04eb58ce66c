"""Builds the flicker test clip from ../shared/eval and measures --stabilize on it (README, "Video").

    python tools/video_flicker.py --out /tmp/flicker [--weights seeded|VGG,DECODER] [--size 256]

The clip: each shared content image in turn (a shot, so the clip has scene cuts), seen by a
camera that pans a few pixels a frame and adds sensor noise (Gaussian, per pixel and frame) and
small exposure changes. Frames are known crops of a larger picture, so the measure compares each
output frame with the previous one where the camera saw the same scene point (motion
compensated): what remains is flicker, not motion. Each style is stylized frame by frame once;
the --stabilize strengths are then applied to those outputs (adain.pipelines.video.steadied, exactly what
the CLI does). Ghosting: how far the smoothed frames are from the per-frame ones where the input
moved and right after cuts. Nothing here is committed: the clip is written to --out.
"""

from __future__ import annotations

import argparse
import fractions
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"  # ../shared/eval beside the checkout


def build(out: Path, size: int, frames_per_shot: int, shots: int, noise: float, seed: int = 0):
  """Writes clip.mp4 (lossless) and returns each frame's (shot, dy, dx) camera offset."""
  from adain.media import images, video_io as video

  rng = np.random.default_rng(seed)
  contents = sorted((EVAL / "content").glob("*.jpg"))[:shots]
  h, w = size, size * 16 // 9 // 2 * 2
  frames, where = [], []
  for shot, path in enumerate(contents):
    scene = images.load_image(path, w + 2 * frames_per_shot)  # room for the camera to move
    y0, x0 = (scene.shape[0] - h) // 2, (scene.shape[1] - w) // 2
    vy, vx = rng.integers(-1, 2), rng.choice([-2, 2])  # half-pixels per frame
    for t in range(frames_per_shot):
      dy, dx = y0 + vy * t // 2, x0 + vx * t // 2
      gain = 1 + 0.02 * rng.standard_normal()  # auto-exposure wobble
      img = scene[dy:dy + h, dx:dx + w] * gain + noise * rng.standard_normal((h, w, 3))
      frames.append(np.clip(img, 0, 1).astype(np.float32))
      where.append((shot, dy, dx))
  video.write_video(out / "clip.mp4", [video.Frame(f, i) for i, f in enumerate(frames)],
                    fractions.Fraction(1, 25), fractions.Fraction(25), crf=0)
  return where


def aligned_flicker(frames: np.ndarray, where) -> float:
  """Mean |frame t - frame t-1| over the pixels both saw, within shots (camera shift undone)."""
  diffs = []
  h, w = frames.shape[1:3]
  for t in range(1, len(frames)):
    (s0, y0, x0), (s1, y1, x1) = where[t - 1], where[t]
    if s0 != s1:
      continue
    dy, dx = y1 - y0, x1 - x0  # frame t's pixel (i, j) is frame t-1's (i + dy, j + dx)
    a = frames[t][max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    b = frames[t - 1][max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)]
    diffs.append(np.mean(np.abs(a.astype(np.float32) - b.astype(np.float32))))
  return float(np.mean(diffs))


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--out", type=Path, required=True)
  p.add_argument("--weights", default="seeded", help="'seeded' or VGG,DECODER files")
  p.add_argument("--size", type=int, default=256, help="frame height")
  p.add_argument("--frames", type=int, default=24, help="frames per shot")
  p.add_argument("--shots", type=int, default=4)
  p.add_argument("--noise", type=float, default=0.03, help="sensor noise std (0..1 scale)")
  p.add_argument("--strengths", default="0,0.5,0.8,0.9,0.95")
  p.add_argument("--taus", default="0.05", help="values of adain.pipelines.video.TAU to try")
  p.add_argument("--styles", type=int, default=2, help="how many shared styles")
  args = p.parse_args(argv)
  sys.path.insert(0, str(ROOT / "tests"))
  from adain.pipelines import video as clip_api
  from adain.media import images, video_io as video
  from adain.inference.stylizer import Stylizer

  args.out.mkdir(parents=True, exist_ok=True)
  where = build(args.out, args.size, args.frames, args.shots, args.noise)
  if args.weights == "seeded":
    import seeded_weights

    vgg, dec = seeded_weights.save(args.out)
  else:
    vgg, dec = args.weights.split(",")
  stylizer = Stylizer.from_files(vgg, dec)
  src = np.stack([f for f, _ in video.VideoReader(args.out / "clip.mp4")])
  base = aligned_flicker(src, where)
  moving = np.abs(src[1:] - src[:-1]).mean(-1) > 0.1  # pixels where the scene moved or cut
  cuts = [t for t in range(1, len(where)) if where[t][0] != where[t - 1][0]]
  print(json.dumps({"clip": str(args.out / "clip.mp4"), "frames": len(src), "size": src.shape[1:3],
                    "input_flicker": round(base, 5), "moving_pixels": round(float(moving.mean()), 3)}))
  for style_path in sorted((EVAL / "style").glob("*.jpg"))[:args.styles]:
    code = stylizer.encode_style(images.load_image(style_path, 256))
    t0 = time.perf_counter()
    raw = np.stack(list(clip_api.stylize_frames(stylizer, iter(src), code, stabilize=0, batch=4)))
    seconds = time.perf_counter() - t0
    for tau in (float(v) for v in args.taus.split(",")):
      clip_api.TAU = tau
      for s in (float(v) for v in args.strengths.split(",")):
        out = np.stack(list(clip_api.steadied(zip(src, raw), s)))
        dev = np.abs(out - raw).mean(-1)
        print(json.dumps({
            "style": style_path.stem, "tau": tau, "stabilize": s,
            "flicker": round(aligned_flicker(out, where), 5),
            "relative_to_input": round(aligned_flicker(out, where) / base, 3),
            "plain_consecutive_mad": round(clip_api.flicker(out), 5),
            "change_vs_per_frame": round(float(dev.mean()), 5),
            "change_where_moving": round(float(dev[1:][moving].mean()), 5),
            "change_after_cuts": round(float(dev[cuts].mean()), 6),
            "per_frame_fps": round(len(src) / seconds, 3)}), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
