"""python -m adain.export.serve DIR: the page that `python -m adain.export --web` wrote, served so
that it runs WebAssembly on several threads.

Browsers give a page threads (SharedArrayBuffer) only when it is cross-origin isolated, that is
served with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp;
`python -m http.server` sends neither, so the page runs one thread there. Every file here is
same-origin, so none needs Cross-Origin-Resource-Policy. MIME types are set for the page's own
files rather than left to the system's table: .mjs must be JavaScript for a module to load,
.wasm application/wasm for streaming compilation.
"""

from __future__ import annotations

import functools
import http.server
import signal
import sys
from pathlib import Path

from adain.commands import flags as cli

ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
         ".onnx": "application/octet-stream"}


class Handler(http.server.SimpleHTTPRequestHandler):
  """SimpleHTTPRequestHandler with the isolation headers on every answer."""

  extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}

  def end_headers(self):
    for name, value in ISOLATION.items():
      self.send_header(name, value)
    super().end_headers()


def build_parser() -> cli.Parser:
  p = cli.Parser(prog="python -m adain.export.serve", description=__doc__.split("\n")[0])
  p.add_argument("dir", metavar="DIR", help="a folder written by python -m adain.export --web")
  p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
  p.add_argument("--port", type=int, default=8000, help="port; 0 takes a free one (default: %(default)s)")
  return p


def run(args, parser) -> int:
  if not 0 <= args.port <= 65535:
    parser.error(f"--port {args.port}: give 0 to 65535")
  folder = Path(args.dir)
  if not folder.is_dir():
    parser.error(f"{folder}: not a folder")
  if not (folder / "index.html").is_file():
    parser.error(f"{folder}: no index.html (write the page with python -m adain.export --output DIR --web)")
  try:
    server = http.server.ThreadingHTTPServer((args.host, args.port), functools.partial(Handler, directory=folder))
  except OSError as e:
    print(f"error: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
    return 1
  host, port = server.server_address[:2]
  # Ctrl-C stops it even when started where SIGINT is ignored (a shell script's background job).
  signal.signal(signal.SIGINT, signal.default_int_handler)
  with server:
    try:
      print(f"serving {folder} on http://{host}:{port}/ (cross-origin isolated); Ctrl-C stops", flush=True)
      server.serve_forever()
    except KeyboardInterrupt:
      print("stopped", file=sys.stderr)
  return 0


def main(argv: list[str] | None = None) -> int:
  return build_parser().main(run, argv)


if __name__ == "__main__":
  sys.exit(main())
