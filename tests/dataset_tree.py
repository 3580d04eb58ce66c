"""A small content/style tree for python -m adain.stylize_dataset, its flags and what it writes:
shared by the one-host tests and the Ray tests (a helper module, not a test module)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from conftest import weight_flags, write_image

STYLES = ["more/s3.PNG", "s1.png", "s2.jpg"]  # sorted by relative path, as the tool lists them


def make_tree(root):
  """Two class folders (one nested), mixed extensions and cases, alpha, grey, a broken file."""
  c, s = root / "content", root / "style"
  for d in (c / "cats", c / "dogs" / "puppies", s / "more"):
    d.mkdir(parents=True)
  write_image(c / "cats" / "a.png", 40, 48, 1)
  write_image(c / "cats" / "B.JPG", 40, 48, 2)
  write_image(c / "cats" / "c.jpeg", 48, 40, 3)
  write_image(c / "cats" / ".hidden.png", 40, 48, 4)
  rgba = np.asarray(Image.open(write_image(c / "dogs" / "d.PNG", 40, 48, 5)).convert("RGBA")).copy()
  rgba[..., 3] = np.linspace(0, 255, 48, dtype=np.uint8)[None, :]
  Image.fromarray(rgba, "RGBA").save(c / "dogs" / "d.PNG")
  Image.open(write_image(c / "dogs" / "e.png", 40, 48, 6)).convert("L").save(c / "dogs" / "e.jpg")
  (c / "dogs" / "e.png").unlink()
  (c / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
  (c / "dogs" / "notes.txt").write_text("not an image")
  write_image(c / "dogs" / "puppies" / "f.png", 40, 48, 7)
  for i, name in enumerate(STYLES):
    write_image(s / name, 32, 36, 10 + i)
  return c, s


def flags(tree, out, weights, *more):
  """The command's flags for this tree (``weights``: see conftest.weight_flags)."""
  c, s = tree
  return ["--content-dir", str(c), "--style-dir", str(s), "--output-dir", str(out), "--style-size", "32",
          *weight_flags(weights), *more]


def files(root):
  return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def manifest(path):
  return [json.loads(line) for line in path.read_text().splitlines()]
