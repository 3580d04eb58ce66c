"""python -m adain.export: the model as ONNX (encoder.onnx, generator.onnx), and optionally a
static web page that runs it in the browser (--web).

Weights are found as every command finds them (--vgg, --decoder, checkpoints/, the cache);
--model microast exports MicroAST (its four files: --weights DIR, checkpoints/microast/, the cache).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adain.commands import flags
from adain.errors import AdainError


def build_parser() -> argparse.ArgumentParser:
  p = flags.Parser(prog="python -m adain.export", description=__doc__.split("\n")[0],
                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_weights()
  p.add_argument("--output", required=True, metavar="DIR",
                 help="folder for encoder.onnx, generator.onnx, README.txt and models.json")
  p.add_argument("--web", action="store_true",
                 help="also write DIR/index.html and what it needs: a page that stylizes images and "
                      "the webcam in the browser (serve DIR with any static file server)")
  p.add_argument("--ort-web", metavar="PATH",
                 help="with --web: the onnxruntime-web package folder (node_modules/onnxruntime-web); "
                      "default: ./node_modules, then the global npm root")
  return p


def run(args, parser) -> int:
  if args.ort_web and not args.web:
    parser.error("--ort-web goes with --web")
  out = Path(args.output)
  if out.exists() and not out.is_dir():
    parser.error(f"{out}: output path exists and is not a folder")
  try:
    from adain.export import onnx_graph, onnx_microast
  except ImportError as e:
    if e.name not in ("onnx", "google.protobuf", "google"):
      raise
    print("error: exporting needs onnx: pip install 'adain[export]'", file=sys.stderr)
    return 1

  try:
    if args.web:  # before any work: a missing onnxruntime-web stops the command, writing nothing
      from adain.export.web import find_ort_web, write_page

      ort_web = find_ort_web(args.ort_web)
    stylizer = flags.load_stylizer(args)
    if stylizer.network == "microast":
      written = onnx_microast.write(stylizer.model(), out)
    else:
      onnx_graph.check_exportable(stylizer.variant, args.decoder)
      written = onnx_graph.write(stylizer.model(), out)
    for path in written:
      print(path)
    if args.web:
      write_page(out, ort_web)
      print(out / "index.html")
  except AdainError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  except OSError as e:
    print(f"error: {out}: cannot write ({e.strerror or e})", file=sys.stderr)
    return 1
  print(f"exported the {stylizer.variant.name} model to {out}" + (" with its web page" if args.web else ""),
        file=sys.stderr)
  return 0


def main(argv: list[str] | None = None) -> int:
  return build_parser().main(run, argv)


def entry() -> None:
  """``python -m adain.export``: the process set up (adain.runtime), then the command."""
  from adain import runtime

  runtime.set_up("adain.export", huge_pages=False)  # exporting runs no XLA program
  sys.exit(main())
