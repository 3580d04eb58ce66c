"""python -m adain.app: a local web page to stylize images, clips and the webcam live, and a /stylize API."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from adain.commands import flags
from adain.errors import AdainError

OWN_FLAGS = {"adain": ("vgg", "decoder"), "microast": ("weights",)}  # each network's weight flags


def build_parser() -> argparse.ArgumentParser:
  p = flags.Parser(prog="python -m adain.app", description=__doc__.split("\n")[0],
                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--host", default="127.0.0.1",
                 help="address to serve on (0.0.0.0 opens the page to your network)")
  p.add_argument("--port", type=int, default=7860, help="port to serve on")
  p.add_argument("--debug-frames", metavar="DIR",
                 help="write each live frame as the webcam sent it and as stylized, "
                      "DIR/*-NNNNNN-in.png and -out.png (for checks; it slows the stream)")
  p.add_weights()
  return p


def loader(args: argparse.Namespace):
  """The Studio's load: a network by name, from its own weight flags (--vgg and --decoder for
  adain, --weights for microast; the page holds both, so the other's flags are no error), else
  checkpoints/, the cache or a download, as every command finds them."""
  def load(model: str):
    own = {flag: getattr(args, flag) if flag in OWN_FLAGS[model] else None
           for flag in ("vgg", "decoder", "weights")}
    return flags.load_stylizer(argparse.Namespace(model=model, **own))
  return load


def main(argv: list[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  # Gradio reads this when imported: no usage statistics or version checks leave the machine.
  os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
  try:
    from adain.app import ui
  except ImportError as e:
    if e.name not in ("gradio", "gradio_client"):
      raise
    print("error: the app needs Gradio: pip install 'adain[app]'", file=sys.stderr)
    return 1
  from adain.app.studio import Studio
  with tempfile.TemporaryDirectory(prefix="adain-app-") as out_dir:  # results, removed at exit
    studio = Studio(loader(args), out_dir, args.model, debug_frames=args.debug_frames)
    try:
      studio.network()  # --model's weights at start: missing ones are the CLI's message and exit
    except AdainError as e:
      print(f"error: {e}", file=sys.stderr)
      return 1
    try:
      ui.launch(ui.build(studio), args.host, args.port)
    except KeyboardInterrupt:
      pass
    except OSError as e:  # the port is taken, the address is not ours, ...
      print(f"error: cannot serve on {args.host}:{args.port}: {str(e).split('. ')[0]}", file=sys.stderr)
      return 1
  return 0


def entry() -> None:
  """``python -m adain.app``: the process set up (adain.runtime), then the command."""
  from adain import runtime

  runtime.set_up("adain.app")
  sys.exit(main())
