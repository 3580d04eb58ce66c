"""Trains a small classifier with and without style augmentation and compares their accuracy on
a plain and a stylized test split (examples/style_augment/example.py; docs/augment.md).

    python -m examples.style_augment.main --output /tmp/aug-example

writes results.json and augmented.png there. MicroAST's published weights download on first
use unless --weights names a folder holding them; --model adain takes --vgg and --decoder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from adain.errors import AdainError
from adain.files import atomic_path, atomic_write
from adain.inference.stylizer import Stylizer
from examples.style_augment import example


def parse(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--model", choices=["microast", "adain"], default="microast")
  p.add_argument("--weights", help="MicroAST: the folder of its four published files")
  p.add_argument("--vgg", help="AdaIN: the encoder's weights")
  p.add_argument("--decoder", help="AdaIN: the decoder's weights")
  p.add_argument("--steps", type=int, default=400)
  p.add_argument("--batch-size", type=int, default=32)
  p.add_argument("--image-size", type=int, default=64)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--output", default="output/style_augment",
                 help="folder for results.json and augmented.png")
  return p.parse_args(argv)


def main(argv=None) -> int:
  args = parse(argv)
  try:
    if args.model == "microast":
      stylizer = Stylizer.from_files(model="microast", weights=args.weights)
    else:
      stylizer = Stylizer.from_files(args.vgg, args.decoder)
  except AdainError as e:  # e.g. offline: which files to place where, in one line
    print(f"error: {e}", file=sys.stderr)
    return 1
  results, picture = example.run(stylizer, steps=args.steps, batch_size=args.batch_size,
                                 image_size=args.image_size, seed=args.seed)
  os.makedirs(args.output, exist_ok=True)
  with atomic_write(os.path.join(args.output, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  with atomic_path(os.path.join(args.output, "augmented.png")) as tmp:
    picture.save(tmp, format="PNG")
  print(example.table(results))
  print(f"{args.steps} steps of {args.batch_size} images of {args.image_size}², both runs in "
        f"{results['seconds']} s; results.json and augmented.png in {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
