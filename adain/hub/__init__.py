"""Where weights are looked for, and fetched from on first use.

A network's files are found by flag, then under ``checkpoints/`` (the working folder), then in
the per-user folder ``$ADAIN_HOME`` (default ``~/.cache/adain``), else downloaded there from
their published URLs (adain.hub.download). Reading them is adain.weights'; checking them, the
network's own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from adain.errors import WeightsError

T = TypeVar("T")


def adain_home() -> Path:
  """Per-user weights cache, download folder and saved programs: $ADAIN_HOME, default ~/.cache/adain."""
  return Path(os.environ.get("ADAIN_HOME") or "~/.cache/adain").expanduser()


def search_dirs(subdir: str = "") -> tuple[Path, Path]:
  """The folders a network's published files are looked for in, in order."""
  return Path("checkpoints") / subdir, adain_home() / subdir


def find(filenames: Sequence[str], subdir: str = "") -> Path | None:
  """The first of ``filenames`` found in search_dirs, in their order."""
  for folder in search_dirs(subdir):
    for name in filenames:
      if (folder / name).is_file():
        return folder / name
  return None


def locate(kind: str, flag: str | os.PathLike | None, sources, load: Callable[[Path], T],
           validate: Callable[[Path], object], *, subdir: str = "", download: bool = True,
           progress: bool = True) -> T:
  """``load`` of the flag's file, else of the first published name found, else of a fresh
  download of ``sources`` (adain.hub.download.Source, in order; each checked with ``validate``
  before it is renamed into place). Offline, one message says what to place where."""
  from adain.hub import download as dl

  if flag:
    return load(Path(flag))
  found = find([s.filename for s in sources], subdir)
  if found is not None:
    return load(found)
  reasons = []
  for source in sources if download else ():
    dest = adain_home() / subdir / source.filename
    try:
      dl.fetch([source.url], dest, validate, progress=progress)
      return load(dest)
    except dl.DownloadError as e:
      reasons.append(e.problem.removeprefix("download failed from every source: "))
  checkpoints, home = search_dirs(subdir)
  first, *others = sources
  alternatives = "".join(f"; {s.filename} from {s.url} works too" for s in others)
  raise WeightsError(None, (
      f"no {kind} weights found, and fetching them failed ({'; '.join(reasons) or 'downloads are off'}). "
      f"Place {first.filename} from {first.url} at {checkpoints / first.filename} or "
      f"{home / first.filename}{alternatives}; or pass --{kind} FILE."))
