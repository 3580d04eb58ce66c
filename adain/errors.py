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
