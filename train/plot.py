"""python -m train.plot WORKDIR... --output curves.png: loss curves of runs, as the paper's Fig. 6.

Total, content and style loss against step (log scale), one line per run, from each workdir's
metrics.jsonl. A run is named by its folder, or NAME=WORKDIR.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from adain.commands import flags
from adain.errors import AdainError
from adain.files import atomic_path

CURVES = (("loss", "total loss"), ("content_loss", "content loss"), ("style_loss", "style loss"))


def pyplot():
  """matplotlib's pyplot on the file-only Agg backend, or one line saying what to install."""
  try:
    import matplotlib
  except ImportError:
    raise AdainError(None, "figures need matplotlib: pip install matplotlib "
                     "(or the train extra: pip install -e '.[train]')") from None
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt


def save_figure(fig, path: str | os.PathLike) -> None:
  """Writes a figure to a temp name in the same folder, renamed into place."""
  path = Path(path)
  try:
    with atomic_path(path) as tmp:
      fig.savefig(tmp, format=path.suffix.lstrip(".") or None, dpi=120, bbox_inches="tight")
  finally:
    pyplot().close(fig)


def named(spec: str) -> tuple[str, str]:
  """NAME=PATH, or PATH named by its folder (or file) name."""
  if "=" in spec and not os.path.exists(spec):
    name, path = spec.split("=", 1)
    return name, path
  p = Path(spec)
  return (p.resolve().name if p.is_dir() else p.stem), spec


def read_metrics(workdir: str | os.PathLike) -> list[dict]:
  """The records of WORKDIR/metrics.jsonl (a torn last line, from a killed run, is skipped)."""
  path = Path(workdir) / "metrics.jsonl"
  if not Path(workdir).is_dir():
    raise AdainError(workdir, "not a folder (expected a training workdir)")
  try:
    with open(path) as f:
      lines = f.read().splitlines()
  except OSError as e:
    raise AdainError(path, f"cannot read ({e.strerror}): not a training workdir, or no step "
                     "logged yet") from None
  records = []
  for line in lines:
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:
      continue
  records = [r for r in records if isinstance(r, dict) and "step" in r]
  if not records:
    raise AdainError(path, "holds no logged steps")
  return records


def plot_curves(runs: dict[str, list[dict]], path: str | os.PathLike) -> None:
  plt = pyplot()
  fig, axes = plt.subplots(1, len(CURVES), figsize=(5 * len(CURVES), 3.8))
  for ax, (key, title) in zip(axes, CURVES):
    for name, records in runs.items():
      points = [(r["step"], r[key]) for r in records if r.get(key, 0) > 0]
      if points:
        ax.plot(*zip(*points), label=name, linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
  axes[0].legend()
  save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
  p = flags.Parser(prog="python -m train.plot", description=__doc__.split("\n")[0])
  p.add_argument("workdirs", nargs="+", metavar="WORKDIR", help="training workdirs (or NAME=WORKDIR)")
  p.add_argument("--output", default="curves.png", metavar="FILE", help="figure to write (.png, .pdf, .svg)")
  args = p.parse_args(argv)
  try:
    runs = {}
    for spec in args.workdirs:
      name, workdir = named(spec)
      if name in runs:
        p.error(f"two runs are named {name!r}: name them with NAME=WORKDIR")
      runs[name] = read_metrics(workdir)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    plot_curves(runs, args.output)
  except AdainError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"wrote {args.output}: {len(runs)} run(s), up to step "
        f"{max(r[-1]['step'] for r in runs.values())}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
