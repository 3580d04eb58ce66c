"""The static page that ``python -m adain.export --web`` writes beside the ONNX pair.

DIR gets index.html, its script and style, the demo pair, and onnxruntime-web's files copied from
a local npm install, so that any static file server gives a working page that asks nothing of any
other address. Each file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

from adain.errors import AdainError
from adain.files import atomic_path

ORT_PACKAGE = "onnxruntime-web"
ORT_VERSION = "1.30"
# The ESM bundle (WebGPU through JSEP, and WebAssembly) has the wasm loader built in; the loader is
# copied as well because it is what the bundle imports when given a folder in env.wasm.wasmPaths.
ORT_FILES = ("ort.bundle.min.mjs", "ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm")
PAGE_FILES = ("index.html", "app.js", "resize.js", "style.css")
DEMO_FILES = {"content.png": "demo/content.png", "style.png": "demo/style.png"}
HOW_TO_GET = (f"get it with `npm install {ORT_PACKAGE}@{ORT_VERSION}` (in this folder), or pass "
              f"--ort-web PATH to the package folder that command leaves (node_modules/{ORT_PACKAGE})")


def write_page(out_dir: Path, package: Path) -> None:
  """Writes the page into ``out_dir`` (which holds, or will hold, encoder.onnx and generator.onnx),
  with onnxruntime-web's files from ``package`` (see find_ort_web)."""
  out_dir = Path(out_dir)
  (out_dir / "ort").mkdir(parents=True, exist_ok=True)
  (out_dir / "demo").mkdir(exist_ok=True)
  page = resources.files("adain.export") / "page"
  assets = resources.files("adain") / "assets"
  copies = [(page / name, name) for name in PAGE_FILES]
  copies += [(assets / name, dest) for name, dest in DEMO_FILES.items()]
  copies += [(package / "dist" / name, f"ort/{name}") for name in ORT_FILES]
  for src, dest in copies:
    _copy(src, out_dir / dest)


def find_ort_web(ort_web: str | None) -> Path:
  """The onnxruntime-web package folder to copy from: ``ort_web``, else the first of
  ./node_modules/onnxruntime-web and $(npm root -g)/onnxruntime-web that has the files.
  AdainError (one line saying how to get the package) when there is none."""
  if ort_web is not None:
    folder = Path(ort_web)
    if not _has_dist(folder):
      missing = "does not exist" if not folder.exists() else f"has no dist/{ORT_FILES[0]} and its wasm files"
      raise AdainError(folder, f"not an {ORT_PACKAGE} package folder ({missing}); {HOW_TO_GET}")
    return folder
  looked = [Path("node_modules") / ORT_PACKAGE]
  npm_root = _npm_global_root()
  if npm_root is not None:
    looked.append(npm_root / ORT_PACKAGE)
  for folder in looked:
    if _has_dist(folder):
      return folder
  places = " and ".join(str(p) for p in looked)
  raise AdainError(None, f"{ORT_PACKAGE} not found (looked in {places}); {HOW_TO_GET}")


def _has_dist(folder: Path) -> bool:
  return all((folder / "dist" / name).is_file() for name in ORT_FILES)


def _npm_global_root() -> Path | None:
  """``npm root -g``, or None without npm (a page can still be written from --ort-web)."""
  npm = shutil.which("npm")
  if npm is None:
    return None
  try:
    done = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=60)
  except (OSError, subprocess.TimeoutExpired):
    return None
  root = done.stdout.strip()
  return Path(root) if done.returncode == 0 and root else None


def _copy(src, dest: Path) -> None:
  """One file (a path or a package resource) copied under a temporary name, then renamed."""
  try:
    with resources.as_file(src) as path, atomic_path(dest) as tmp:
      shutil.copyfile(path, tmp)
  except OSError as e:
    raise AdainError(dest, f"cannot write: {e.strerror or e}") from None
