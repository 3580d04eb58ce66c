"""python -m adain.app: a local web page to stylize images, clips and the webcam live, and a /stylize API."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from adain.commands import flags
from adain.errors import AdainError


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
  try:
    stylizer = flags.load_stylizer(args)
  except AdainError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  with tempfile.TemporaryDirectory(prefix="adain-app-") as out_dir:  # results, removed at exit
    try:
      ui.launch(ui.build(Studio(stylizer, out_dir, debug_frames=args.debug_frames)), args.host, args.port)
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
