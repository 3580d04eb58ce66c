"""Fetching published weights on first use, so that nothing partial or wrong is ever left in place.

A file is streamed into a temporary file next to its destination, checked (length, optional
SHA-256, then the caller's ``validate``) and only then renamed into place; any failure removes
the temporary file and moves on to the next URL (mirror).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO, Callable, NamedTuple, Sequence

from tqdm import tqdm

from adain.errors import AdainError
from adain.files import atomic_path


class DownloadError(AdainError):
  """No URL gave a complete, valid file; the message lists each URL with why it failed."""


class Source(NamedTuple):
  """Where a published file lives and the name to save it as (its suffix tells the format)."""

  url: str
  filename: str


USER_AGENT = "adain-weights-fetcher (Python urllib)"
# The published files are 80 MB at most; a bound keeps a misbehaving mirror from filling the disk.
MAX_BYTES = 1 << 30
_CHUNK = 1 << 16
_SCHEMES = ("http", "https")


class _Failed(Exception):
  """This URL did not give the expected file; the message is the reason shown to the user."""


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
  """Follows redirects (GitHub releases use them) only to http(s), never from https down to http."""

  def redirect_request(self, req, fp, code, msg, headers, newurl):
    old = urllib.parse.urlsplit(req.full_url).scheme
    new = urllib.parse.urlsplit(newurl).scheme.lower()
    if new not in _SCHEMES or (old == "https" and new == "http"):
      fp.close()
      raise _Failed(f"refused redirect to {newurl}")
    return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_RedirectHandler)


def _content_length(resp) -> int | None:
  try:
    n = int(resp.headers.get("Content-Length", ""))
  except ValueError:
    return None
  return n if n >= 0 else None


def _stream(url: str, out: BinaryIO, name: str, progress: bool, timeout: float,
            max_bytes: int) -> str:
  """Writes url's whole body to out and returns its SHA-256 (hex); raises on a short transfer."""
  headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
  req = urllib.request.Request(url, headers=headers)
  with _OPENER.open(req, timeout=timeout) as resp:
    total = _content_length(resp)
    if total is not None and total > max_bytes:
      raise _Failed(f"{total} bytes is over the {max_bytes}-byte limit")
    digest = hashlib.sha256()
    got = 0
    # A bar only where someone watches: piped or logged stderr would fill with carriage returns.
    show = progress and bool(getattr(sys.stderr, "isatty", lambda: False)())
    with tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024,
              file=sys.stderr, disable=not show) as bar:
      while chunk := resp.read(_CHUNK):
        got += len(chunk)
        if got > max_bytes:
          raise _Failed(f"more than the {max_bytes}-byte limit")
        digest.update(chunk)
        out.write(chunk)
        bar.update(len(chunk))
    # http.client just stops at EOF when the body is shorter than Content-Length, so count.
    if total is not None and got < total:
      raise _Failed(f"transfer cut short: got {got} of {total} bytes")
  return digest.hexdigest()


def _reason(err: BaseException, timeout: float) -> str:
  if isinstance(err, urllib.error.HTTPError):
    text = f"HTTP {err.code} {err.reason}"
  elif isinstance(err, urllib.error.URLError):
    reason = err.reason
    text = _reason(reason, timeout) if isinstance(reason, BaseException) else str(reason)
  elif isinstance(err, TimeoutError):
    text = f"timed out after {timeout:g} s"
  elif isinstance(err, AdainError):
    text = err.problem  # the temporary file's name would mean nothing to the user
  elif isinstance(err, OSError) and err.strerror:
    text = err.strerror
  else:
    text = str(err) or type(err).__name__
  return re.sub(r"\s+", " ", text).strip()


def _try(url: str, dest: Path, validate: Callable[[Path], None], sha256: str | None,
         progress: bool, timeout: float, max_bytes: int) -> str | None:
  """Puts url's file at dest and returns None, or returns why not, leaving nothing behind."""
  scheme = urllib.parse.urlsplit(url).scheme.lower()
  if scheme not in _SCHEMES:
    return f"refused scheme {scheme or 'none'!r}: only http and https are fetched"
  # Also on KeyboardInterrupt or a bug in validate: those propagate, but leave no partial file.
  try:
    with atomic_path(dest) as tmp:
      with open(tmp, "xb") as out:
        digest = _stream(url, out, dest.name, progress, timeout, max_bytes)
        out.flush()
        os.fsync(out.fileno())
      if sha256 is not None and digest != sha256:
        raise _Failed(f"SHA-256 is {digest}, expected {sha256}")
      validate(tmp)
    return None
  except (_Failed, AdainError, OSError, http.client.HTTPException) as err:
    return _reason(err, timeout)


def fetch(urls: Sequence[str], dest: str | os.PathLike, validate: Callable[[Path], None], *,
          sha256: str | None = None, progress: bool = True, timeout: float = 30.0,
          max_bytes: int = MAX_BYTES) -> Path:
  """Saves the first of urls that gives a valid file as dest, and returns dest.

  Each URL is tried in order; a failure (HTTP error, a transfer cut short, ``timeout`` seconds
  without data, a SHA-256 mismatch, or ``validate(tmp_path)`` raising an AdainError) moves on to
  the next. dest is replaced only by a file that passed every check. The progress bar goes to
  stderr, and only when ``progress`` is set and stderr is a terminal. Raises DownloadError naming
  dest and each URL with its reason when none succeeds.
  """
  urls = [urls] if isinstance(urls, str) else list(urls)
  if sha256 is not None:
    sha256 = sha256.lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
      raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
  dest = Path(dest)
  if not urls:
    raise DownloadError(dest, "no URL to download from")
  try:
    dest.parent.mkdir(parents=True, exist_ok=True)
  except OSError as err:
    raise DownloadError(dest.parent, f"cannot create the folder: {_reason(err, timeout)}") from None
  failures = []
  for url in urls:
    reason = _try(url, dest, validate, sha256, progress, timeout, max_bytes)
    if reason is None:
      return dest
    failures.append(f"{url} ({reason})")
  raise DownloadError(dest, "download failed from every source: " + "; ".join(failures))
