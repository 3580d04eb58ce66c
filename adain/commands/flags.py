"""Shared pieces of the command-line modules: the parser class and flag value types.

Only command modules (adain.stylize, adain.encode_style, ...) import this; the library never sees argv.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

IMAGE_EXTENSIONS = ("png", "jpeg", "jpg")  # what folders of images are read for (stylize-datasets')


class Parser(argparse.ArgumentParser):
  """Usage errors as one line on stderr, exit status 2."""

  def error(self, message):
    self.exit(2, f"{self.prog}: error: {message}\n")

  def files_in(self, folder: str) -> list[Path]:
    """The files of a folder (not hidden), sorted; a missing or empty folder is a usage error."""
    d = Path(folder)
    if not d.is_dir():
      self.error(f"{folder}: not a folder")
    files = sorted(f for f in d.iterdir() if f.is_file() and not f.name.startswith("."))
    if not files:
      self.error(f"{folder}: no files in this folder")
    return files

  def add_weights(self, decoder: bool = True) -> None:
    """--model, its weights (--vgg and, unless decoder is False, --decoder for adain; --weights
    for microast), as every command resolves them."""
    from adain.models import NETWORKS

    self.add_argument("--model", choices=NETWORKS, default="adain",
                      help="the network: adain (the paper's) or microast (real time on a CPU)")
    self.add_argument("--vgg", metavar="FILE", help="adain's encoder weights (.pth, .t7 or .npz)")
    if decoder:
      self.add_argument("--decoder", metavar="FILE_OR_DIR",
                        help="adain's decoder weights (.pth, .t7, .npz) or a training workdir")
    self.add_argument("--weights", metavar="DIR",
                      help="microast's weights: a folder holding its four published files")

  def main(self, run, argv: list[str] | None = None) -> int:
    """Parses argv and returns ``run(args, parser)``'s exit status (130 on Ctrl-C)."""
    args = self.parse_args(argv)
    try:
      return run(args, self)
    except KeyboardInterrupt:
      print("interrupted", file=sys.stderr)
      return 130


def load_stylizer(args, encoder_only: bool = False):
  """The Stylizer that the weight flags name (--model, --vgg, --decoder, --weights, --dtype where
  the command has them): how every command builds one. ``encoder_only``: adain's --vgg alone
  (style codes need no decoder). The weights are read and checked (numpy) in a thread while JAX
  is imported, with the garbage collector paused (adain.runtime.start_up). Raises AdainError
  naming the file."""
  from concurrent.futures import ThreadPoolExecutor

  from adain import runtime
  from adain.models import read_weights

  def read():
    return read_weights(getattr(args, "model", "adain"), args.vgg, getattr(args, "decoder", None),
                        getattr(args, "weights", None), encoder_only=encoder_only)

  with runtime.start_up(), ThreadPoolExecutor(1) as pool:
    arrays = pool.submit(read)
    from adain.inference.stylizer import Stylizer

    return Stylizer.from_arrays(*arrays.result(), dtype=getattr(args, "dtype", "float32"))


def weights(text: str) -> list[float]:
  try:
    values = [float(v) for v in text.split(",")]
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
  if not all(math.isfinite(v) and v >= 0 for v in values) or sum(values) <= 0:
    raise argparse.ArgumentTypeError(f"weights must be finite, >= 0 and not all 0: {text!r}")
  return values


def alpha(text: str) -> float:
  try:
    a = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
  if not 0.0 <= a <= 1.0:  # also false for NaN
    raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
  return a


def _whole(text: str, lo: int, hi: int | None = None, unit: str = "") -> int:
  try:
    n = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected a whole number{unit}, got {text!r}") from None
  if n < lo or hi is not None and n > hi:
    raise argparse.ArgumentTypeError(f"must be >= {lo}, got {n}" if hi is None else f"must be {lo}..{hi}, got {n}")
  return n


def pixels(text: str) -> int:
  return _whole(text, 0, unit=" of pixels")


def crf(text: str) -> int:
  """H.264 constant rate factor: 0 (lossless) .. 51."""
  return _whole(text, 0, 51)


def batch(text: str) -> int:
  return _whole(text, 1)


def stabilize(text: str) -> float:
  s = alpha(text)
  if s >= 1:
    raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
  return s
