"""User-facing errors: one line that names the file and the problem."""

from __future__ import annotations

import os


class AdainError(Exception):
  """An error a user can act on; the CLIs print it as one line, without a traceback."""

  def __init__(self, path: str | os.PathLike | None, problem: str):
    self.path = None if path is None else os.fspath(path)
    self.problem = problem
    super().__init__(problem if self.path is None else f"{self.path}: {problem}")


class WeightsError(AdainError):
  """A weights file that is unreadable, unsafe, or of the wrong architecture."""


class ImageError(AdainError):
  """An image file that is missing, broken, too large or of a refused format."""


class VideoError(AdainError):
  """A video file that is missing, broken, has no picture, or cannot be written."""


def one_line(e: BaseException) -> str:
  """An exception's message on one line (library messages may span several)."""
  return " ".join(str(e).split()) or type(e).__name__


def read_weights_bytes(path: str | os.PathLike) -> bytes:
  """A weights file's bytes, or WeightsError naming it: the readers parse bytes, not files."""
  try:
    with open(path, "rb") as f:
      return f.read()
  except OSError as e:
    raise WeightsError(path, f"cannot read: {e.strerror or e}") from None
