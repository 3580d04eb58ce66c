"""Process settings for the command-line tools that a library cannot change once running."""

from __future__ import annotations

import contextlib
import gc
import os
import sys

HUGE_PAGES = "glibc.malloc.hugetlb=1"


def reexec_with_huge_pages(module: str) -> None:
  """Runs ``python -m module`` again with glibc's malloc asking for transparent huge pages.

  XLA's CPU runtime allocates each step's large buffers afresh, and with 4 KiB pages the kernel
  faults in each one: about 600,000 page faults per 512x512 stylization, a third of its time
  here (2.6 s instead of 3.5 s with huge pages). glibc reads GLIBC_TUNABLES only at start-up,
  hence the exec; it is skipped where the tunable is already set or the OS is not Linux (other
  C libraries ignore the variable). Call it before importing JAX.
  """
  tunables = os.environ.get("GLIBC_TUNABLES", "")
  if not sys.platform.startswith("linux") or "glibc.malloc.hugetlb" in tunables:
    return
  env = {**os.environ, "GLIBC_TUNABLES": f"{tunables}:{HUGE_PAGES}" if tunables else HUGE_PAGES}
  os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], env)


@contextlib.contextmanager
def start_up():
  """Python's cyclic garbage collector paused while a command imports and sets up, and what
  that made frozen after (gc.freeze): it lives as long as the process, so no collection needs
  to scan it. Importing JAX makes hundreds of thousands of objects, and collections among them
  cost ≈ 0.2 s of one image's run here."""
  enabled = gc.isenabled()
  gc.disable()
  try:
    yield
  finally:
    gc.freeze()
    if enabled:
      gc.enable()
