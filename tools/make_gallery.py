"""Draws docs/images/gallery.jpg, the README's picture: content | style | MicroAST's stylization,
one row per pair, with MicroAST's published weights.

  .venv/bin/python tools/make_gallery.py --weights DIR --eval ../shared/eval

DIR holds MicroAST's four published files (github.com/EndyWon/MicroAST, MIT licence); --eval is
a folder with content/ and style/ of the AdaIN authors' test images (github.com/xunhuang1995/
AdaIN-style, input/). Only the picture this writes goes into the repository.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from adain.inference.stylizer import Stylizer
from adain.media import images

ROOT = Path(__file__).resolve().parent.parent
PAIRS = (("golden_gate.jpg", "la_muse.jpg"),
         ("sailboat.jpg", "woman_with_hat_matisse.jpg"),
         ("chicago.jpg", "brushstrokes.jpg"))
ROW = 200  # pixels a side of each picture
GAP = 4


def tile(img_hw3: np.ndarray, side: int) -> Image.Image:
  """A square image scaled to side x side."""
  return Image.fromarray(images.to_uint8(img_hw3)).resize((side, side), Image.Resampling.LANCZOS)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--weights", required=True, help="MicroAST's four published files")
  p.add_argument("--eval", required=True, help="folder with content/ and style/")
  p.add_argument("--output", default=str(ROOT / "docs" / "images" / "gallery.jpg"))
  p.add_argument("--quality", type=int, default=82)
  args = p.parse_args()
  stylizer = Stylizer.from_files(model="microast", weights=args.weights, download=False)
  rows = []
  for content_name, style_name in PAIRS:
    content = images.load_image(Path(args.eval) / "content" / content_name, 512, crop=True)
    style = images.load_image(Path(args.eval) / "style" / style_name, 512, crop=True)
    out = stylizer.stylize(content, style)
    rows.append([tile(content, ROW), tile(style, ROW), tile(out, ROW)])
  sheet = Image.new("RGB", (3 * ROW + 2 * GAP, len(rows) * ROW + GAP * (len(rows) - 1)), "white")
  for i, row in enumerate(rows):
    for j, t in enumerate(row):
      sheet.paste(t, (j * (ROW + GAP), i * (ROW + GAP)))
  sheet.save(args.output, quality=args.quality, optimize=True)
  print(f"{args.output}: {sheet.width}x{sheet.height}, {Path(args.output).stat().st_size // 1024} KB")


if __name__ == "__main__":
  main()
