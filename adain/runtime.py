"""Process settings for the commands, which a library must not change behind its user's back.

``import adain`` changes no environment variable and writes no file. A command calls
``set_up`` first thing in its ``__main__``: the XLA flag for fast CPU convolutions (opt out with
``ADAIN_XLA_FLAG=0``) and the huge-pages restart (opt out with ``ADAIN_HUGE_PAGES=0``). A
program that uses the library can call ``use_xla_flag()`` itself before JAX starts its CPU
client (its first computation).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys

HUGE_PAGES = "glibc.malloc.hugetlb=1"
# XLA's CPU backend sends each convolution to YNNPACK by default; its Eigen convolution is 2-6x
# faster on this network's 3x3 layers (measured on 2 EPYC cores: 48-137 GFLOP/s against 11-22;
# as im2col with one matmul 11-36, as nine shifted matmuls 18-56; PyTorch's oneDNN 32-68).
# YNNPACK's "reduce" fusions are turned off too: they swallow the convolution before each max
# pooling (conv + bias + ReLU + pool in one YNNPACK call), which took a fifth of a training
# step's CPU time; without them the train step takes 1.27x less CPU time at batch 4, 128 px.
XLA_CPU_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution,-reduce"


def _off(variable: str) -> bool:
  return os.environ.get(variable, "1").strip().lower() in ("0", "false", "no", "off")


def use_xla_flag() -> None:
  """Adds XLA_CPU_FLAG to XLA_FLAGS, unless ADAIN_XLA_FLAG=0 or XLA_FLAGS already sets that
  flag (the user's setting wins). XLA reads it when its CPU client starts: call this before."""
  flags = os.environ.get("XLA_FLAGS", "")
  if not _off("ADAIN_XLA_FLAG") and "xla_cpu_experimental_ynn_fusion_type" not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} {XLA_CPU_FLAG}".strip()


def set_up(module: str, huge_pages: bool = True) -> None:
  """A command's process settings, before it imports JAX: the XLA flag, then (if ``huge_pages``
  and not ADAIN_HUGE_PAGES=0) the restart with huge pages (see reexec_with_huge_pages)."""
  use_xla_flag()
  if huge_pages and not _off("ADAIN_HUGE_PAGES"):
    reexec_with_huge_pages(module)


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
