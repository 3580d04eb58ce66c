"""python -m adain.stylize: stylize content images with style images or style codes.

Flags follow pytorch-AdaIN's test.py, and its spellings (--content_dir, --save_ext, ...) are
accepted too, so its users' scripts run unchanged. With neither --content nor --style it
stylizes the demo pair bundled in adain/assets.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from importlib import resources
from pathlib import Path

from adain.commands import flags
from adain.errors import AdainError

ASSETS = resources.files("adain") / "assets"


def build_parser() -> argparse.ArgumentParser:
  p = flags.Parser(prog="python -m adain.stylize", description=__doc__.split("\n")[0],
              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--content", metavar="FILE", help="content image or video")
  p.add_argument("--content-dir", "--content_dir", dest="content_dir", metavar="DIR",
                 help="folder of content images and videos (each is stylized with each style)")
  p.add_argument("--style", metavar="FILE[,FILE...]", help="style image(s) or .npz style code(s), comma-separated")
  p.add_argument("--style-dir", "--style_dir", dest="style_dir", metavar="DIR", help="folder of style images")
  p.add_argument("--style-weights", "--style_interpolation_weights", dest="style_weights", metavar="W1,W2,...",
                 type=flags.weights, help="mix the styles with these weights into one")
  p.add_argument("--mask", metavar="FILE", help="mask image: white parts take the first style, black the second")
  p.add_argument("--alpha", type=flags.alpha, default=1.0, metavar="A",
                 help="degree of stylization, 0 (content) to 1 (full style)")
  p.add_argument("--content-size", "--content_size", dest="content_size", type=flags.pixels, default=512, metavar="N",
                 help="shorter side of the content image; 0 keeps its size")
  p.add_argument("--style-size", "--style_size", dest="style_size", type=flags.pixels, default=512, metavar="N",
                 help="shorter side of the style image; 0 keeps its size")
  p.add_argument("--crop", action="store_true", help="center-crop to a size x size square")
  p.add_argument("--tile", type=flags.pixels, metavar="N",
                 help="stylize in N-pixel tiles joined without seams (0: never; default: only when "
                      "the image would not fit in memory)")
  p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                 help="network precision; bfloat16 is for GPUs (slower on a CPU, off parity)")
  p.add_argument("--preserve-color", "--preserve_color", dest="preserve_color", nargs="?",
                 const="coral", choices=("coral", "luminance"),
                 help="keep the content's colours (bare flag: coral, as pytorch-AdaIN)")
  p.add_weights()
  p.add_argument("--output", default="output", metavar="DIR", help="output folder")
  p.add_argument("--ext", "--save_ext", dest="ext", default="jpg", type=lambda s: s.lstrip(".").lower(),
                 choices=("jpg", "png"), help="output image format (videos are written as .mp4)")
  p.add_argument("--crf", type=flags.crf, default=18, metavar="N",
                 help="video: H.264 quality, 1 (best) to 51; 0 is lossless (RGB, exact frames)")
  p.add_argument("--stabilize", type=flags.stabilize, metavar="S",
                 help="video: smoothing over time where the scene is still, 0 (off: each frame "
                      "is its still image) to below 1; None: adain.pipelines.video.STABILIZE (0.8)")
  p.add_argument("--batch", type=flags.batch, metavar="N",
                 help="video: frames per step; None: 1 on a CPU, else from the available memory (at most 8)")
  return p


def _inputs(args, parser) -> tuple[list[Path], list[Path]]:
  if not any((args.content, args.content_dir, args.style, args.style_dir)):
    return [Path(str(ASSETS / "content.png"))], [Path(str(ASSETS / "style.png"))]
  if args.content and args.content_dir or args.style and args.style_dir:
    parser.error("give --content or --content-dir, and --style or --style-dir, not both of a pair")
  if not (args.content or args.content_dir) or not (args.style or args.style_dir):
    parser.error("both a content (--content/--content-dir) and a style (--style/--style-dir) are needed")
  contents = [Path(args.content)] if args.content else parser.files_in(args.content_dir)
  styles = [Path(s) for s in args.style.split(",")] if args.style else parser.files_in(args.style_dir)
  return contents, styles


def _check_args(args, parser, styles: list[Path]) -> None:
  if args.style_weights is not None and len(args.style_weights) != len(styles):
    parser.error(f"--style-weights has {len(args.style_weights)} weights for {len(styles)} styles")
  if args.mask and len(styles) != 2:
    parser.error(f"--mask needs exactly two styles (foreground, background), got {len(styles)}")
  if args.mask and args.style_weights:
    parser.error("--mask and --style-weights cannot be combined")
  if args.preserve_color and (args.mask or args.style_weights):
    parser.error("--preserve-color works with one style at a time, not with --mask or --style-weights")
  out = Path(args.output)
  if out.exists() and not out.is_dir():
    parser.error(f"{out}: output path exists and is not a folder")


def run(args, parser) -> int:
  """Stylizes every content x style pair; returns the process exit status."""
  contents, styles = _inputs(args, parser)
  _check_args(args, parser, styles)
  start = time.perf_counter()
  try:
    stylizer = flags.load_stylizer(args)
  except AdainError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  from tqdm import tqdm

  from adain.media import images, video_io
  if stylizer.concat and (args.style_weights or args.mask or args.alpha != 1):
    parser.error("an Enc-Concat-Dec (concat) decoder takes one style at a time at alpha 1: "
                 "no --style-weights, --mask or --alpha")
  out_dir = Path(args.output)
  try:
    out_dir.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    parser.error(f"{out_dir}: cannot create output folder ({e.strerror})")

  failed = 0

  def fail(e: AdainError, content: Path | None = None) -> None:
    """Reports an error; those of the Stylizer (no file known to it) name the content file."""
    nonlocal failed
    failed += 1
    if e.path is None and content is not None:
      e = AdainError(content, e.problem)
    tqdm.write(f"error: {e}", file=sys.stderr)

  # Each style is read and encoded once per run; per-pair colour preservation needs the image.
  style_inputs: dict[Path, object] = {}
  for s in styles:
    try:
      if s.suffix.lower() == ".npz":
        if args.preserve_color:
          raise AdainError(s, "--preserve-color needs the style image, not a style code")
        style_inputs[s] = stylizer.load_style_code(s)
      else:
        img = images.load_image(s, args.style_size, args.crop)
        style_inputs[s] = img if args.preserve_color else stylizer.encode_style(img, args.tile)
    except AdainError as e:
      fail(e, s)
  mixed = args.style_weights is not None or args.mask
  mask = None
  if args.mask:
    try:
      mask = images.load_mask(args.mask)  # at its own size; resized for each content
    except AdainError as e:
      fail(e)
  if failed and mixed or not style_inputs:
    print(f"error: {failed} input(s) could not be read; nothing written", file=sys.stderr)
    return 1
  if args.style_weights is not None:
    jobs = [("interpolation", stylizer.concat_codes(list(style_inputs.values())).mix(args.style_weights))]
  elif args.mask:
    jobs = [("stylized_" + "_".join(s.stem for s in styles), stylizer.concat_codes(list(style_inputs.values())))]
  else:
    jobs = [(f"stylized_{s.stem}", style) for s, style in style_inputs.items()]

  written, clips, frames, video_s = 0, 0, 0, 0.0
  with tqdm(total=len(contents) * len(jobs), unit="file", file=sys.stderr, disable=None) as bar:
    for c in contents:
      if video_io.is_video(c):
        for suffix, style in jobs:
          path = out_dir / f"{c.stem}_{suffix}.mp4"
          try:
            summary = _stylize_video(stylizer, c, path, style, mask, args)
            clips, frames, video_s = clips + 1, frames + summary.frames, video_s + summary.seconds
            tqdm.write(str(path))
          except AdainError as e:
            fail(e, c)
          bar.update(1)
        continue
      try:
        content = images.load_image(c, args.content_size, args.crop)
        content_mask = stylizer.code_mask(mask, content.shape[:2]) if args.mask else None
      except AdainError as e:
        fail(e, c)
        bar.update(len(jobs))
        continue
      code = None  # the content is encoded once for all its styles
      for suffix, style in jobs:
        try:
          if code is None:
            code = stylizer.encode_content(content, args.preserve_color, args.tile)
          out = stylizer.stylize(code, style, args.alpha, mask_hw=content_mask, tile=args.tile)
          path = out_dir / f"{c.stem}_{suffix}.{args.ext}"
          images.save_image(path, out)
          written += 1
          tqdm.write(str(path))
        except AdainError as e:
          fail(e, c)
        bar.update(1)
  elapsed = time.perf_counter() - start
  summary = f"wrote {written} image(s)"
  if clips:
    summary += f" and {clips} video(s) ({frames} frames, {frames / max(video_s, 1e-9):.2f} frames/s)"
  summary += f" to {out_dir}/ in {elapsed:.1f} s"
  print(summary + (f", {failed} failed" if failed else ""), file=sys.stderr)
  return 1 if failed else 0


def _stylize_video(stylizer, src: Path, dst: Path, style, mask, args):
  """One clip through adain.pipelines.video.stylize_clip, with its own progress bar in frames."""
  from tqdm import tqdm

  from adain.pipelines import video

  options = {} if args.stabilize is None else {"stabilize": args.stabilize}
  with tqdm(unit="frame", desc=src.name, file=sys.stderr, disable=None, leave=False) as bar:

    def progress(done: int, total: int | None) -> None:
      bar.total = total
      bar.update(done - bar.n)

    return video.stylize_clip(stylizer, src, dst, style, alpha=args.alpha, content_size=args.content_size,
                              crop=args.crop, mask=mask, preserve_color=args.preserve_color,
                              crf=args.crf, batch=args.batch, tile=args.tile, progress=progress, **options)


def several_images(argv: list[str] | None = None) -> bool:
  """Whether the command line makes more than one image (contents x styles, or a video's frames).

  Only then does the command restart with huge pages (adain.runtime): they save a share of each
  image's compute, while the restart costs a second interpreter start, and one image's own
  page faults are too few for it to pay (docs: performance, "One image, whole process").
  """
  from adain.media import video_io

  parser = build_parser()
  args = parser.parse_args(argv)
  contents, styles = _inputs(args, parser)
  jobs = 1 if args.style_weights is not None or args.mask else len(styles)
  return len(contents) * jobs > 1 or any(video_io.is_video(c) for c in contents)


def main(argv: list[str] | None = None) -> int:
  return build_parser().main(run, argv)


def entry() -> None:
  """``python -m adain.stylize``: the process set up (adain.runtime), then the command."""
  from adain import runtime

  runtime.set_up("adain.stylize", huge_pages=several_images())
  status = main()
  # Every output is complete (written and renamed) and JAX writes its cache when it compiles:
  # the interpreter's teardown (JAX's backend and thread pools, freeing the model) is skipped.
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)
