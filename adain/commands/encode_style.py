"""python -m adain.encode_style: save style codes (.npz) to reuse with --style code.npz.

A style code is what the network keeps of a style image (AdaIN: the mean and std of its relu4_1
features); stylizing with the code gives the same pixels as stylizing with the image, without
reading or encoding it again. ``--style-dir DIR --output bank.npz`` writes one file holding the
codes of every image under DIR, one row each in sorted path order: a style bank for
adain.augment (unreadable images are named on stderr and left out).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adain.errors import AdainError
from adain.commands import flags


def build_parser() -> argparse.ArgumentParser:
  p = flags.Parser(prog="python -m adain.encode_style", description=__doc__.split("\n")[0],
              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("images", nargs="*", help="style images")
  p.add_argument("--style-dir", "--style_dir", dest="style_dir",
                 help="a folder of style images (any depth): their codes as one .npz bank")
  p.add_argument("--extensions", nargs="+", default=list(flags.IMAGE_EXTENSIONS), metavar="EXT",
                 help="with --style-dir: extensions of the image files to read, in any case")
  p.add_argument("--output", required=True,
                 help="a .npz file (one image, or the --style-dir bank), or a folder that gets "
                      "IMAGE_STEM.npz per image")
  p.add_weights(decoder=False)
  p.add_argument("--style-size", "--style_size", dest="style_size", type=flags.pixels, default=512,
                 help="shorter side the style image is resized to; 0 keeps its size")
  p.add_argument("--crop", action="store_true", help="center-crop to a size x size square")
  return p


def output_paths(images: list[str], output: str, parser) -> list[Path]:
  out = Path(output)
  if out.suffix.lower() == ".npz":
    if len(images) != 1:
      parser.error(f"{output}: one .npz file takes one image; give a folder for {len(images)}")
    if out.is_dir():
      parser.error(f"{output}: is a folder")
    return [out]
  if out.exists() and not out.is_dir():
    parser.error(f"{output}: output path exists and is not a folder")
  return [out / f"{Path(i).stem}.npz" for i in images]


def bank_images(args, parser) -> list[Path]:
  """--style-dir's images, sorted (the bank's row order)."""
  from adain.pipelines.datasets import list_images

  root = Path(args.style_dir)
  if args.images:
    parser.error("give style images or --style-dir, not both")
  if Path(args.output).suffix.lower() != ".npz" or Path(args.output).is_dir():
    parser.error(f"{args.output}: --style-dir writes one .npz bank file")
  if not root.is_dir():
    parser.error(f"{root}: --style-dir is not a folder")
  found = [root / p for p in list_images(root, args.extensions)]
  if not found:
    parser.error(f"{root}: no images with extensions {' '.join(args.extensions)} (any case) in this folder tree")
  return found


def main(argv: list[str] | None = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  if args.style_dir is None and not args.images:
    parser.error("give style images, or --style-dir DIR")
  bank = args.style_dir is not None
  paths = bank_images(args, parser) if bank else args.images
  outputs = [Path(args.output)] if bank else output_paths(args.images, args.output, parser)
  from tqdm import tqdm

  from adain.media import images

  try:
    outputs[0].parent.mkdir(parents=True, exist_ok=True)
    stylizer = flags.load_stylizer(args, encoder_only=True)
  except (AdainError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  codes, failed = [], 0
  for i, path in enumerate(tqdm(paths, desc="style codes", unit="image", dynamic_ncols=True,
                                disable=not bank)):
    try:
      code = stylizer.encode_style(images.load_image(path, args.style_size, args.crop))
      if bank:  # unreadable images are named and left out of the one file
        codes.append(code)
      else:
        code.save(outputs[i])
        print(outputs[i])
    except (AdainError, OSError) as e:
      failed += 1
      tqdm.write(f"error: {e}", file=sys.stderr)
  if codes:
    stylizer.concat_codes(codes).save(outputs[0])
    print(outputs[0])
  written = f"{len(codes)} style codes to one bank" if bank else f"{len(paths) - failed} style code(s)"
  print(f"wrote {written}" + (f", {failed} failed" if failed else ""), file=sys.stderr)
  return 1 if failed or (bank and not codes) else 0


def entry() -> None:
  """``python -m adain.encode_style``: the process set up (adain.runtime), then the command."""
  from adain import runtime

  runtime.set_up("adain.encode_style")
  sys.exit(main())
