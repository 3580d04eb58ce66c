"""Files written whole or not at all: a temporary name beside the target, renamed into place.

Every file adain writes (images, clips, weights, codes, programs, exports, reports) goes through
``atomic_write`` or ``atomic_path``, so a reader never sees a partial file at a final path. A
process killed by SIGKILL cannot remove its temporary file; ``temp_target`` recognises one, so
that resumable jobs can delete it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_TEMP_NAME = re.compile(r"\.(.+)\.[0-9a-f]{12}\.tmp")


def temp_path(path: str | os.PathLike) -> Path:
  """A fresh hidden name beside ``path`` for writing it before the rename into place."""
  path = Path(path)
  return path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"


def temp_target(name: str) -> str | None:
  """The file name that a temporary of this name (``temp_path``) was to become, else None."""
  m = _TEMP_NAME.fullmatch(name)
  return m and m.group(1)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
  """A temporary path beside ``path`` for a writer that takes a file name; renamed to ``path``
  when the block ends without an error, else removed."""
  path = Path(path)
  tmp = temp_path(path)
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
  """``atomic_path``'s temporary file, created and opened for writing (``mode`` "wb" or "w";
  permissions from the umask, as ``open`` makes them)."""
  with atomic_path(path) as tmp, open(tmp, mode.replace("w", "x")) as f:
    yield f
