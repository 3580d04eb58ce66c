"""Two devices for python -m adain.stylize_dataset: one process over both, or one process each?
And the --ray engine against the one-host run.

  .venv/bin/python tools/bench_stylize_dataset.py --content-dir DIR --style-dir DIR [--rounds 2]
      [--configs one,threads,shards,ray]

Each round times whole commands on the same work (every content image with --num-styles
styles, at --content-size and --style-size), alternating so that a busy machine slows all of
them alike: ``one``: one process, one device; ``threads``: one process driving two devices, a
thread each; ``shards``: two processes at once, --shard 0/2 and 1/2, one device each; ``ray``:
``--ray``, a local Ray started by the run (its start-up counted, as a user's run pays it), one
stylizing actor per GPU, else one for the host (needs adain[ray]). Devices
are GPUs 0 and 1 (CUDA_VISIBLE_DEVICES) where there are GPUs, else two XLA host devices made of
the same CPU cores (--xla_force_host_platform_device_count=2). JSON lines give each run's
seconds, the summary the medians and the speed of each against ``one``. A first untimed run
saves the compiled programs. Weights are the seeded stand-ins of tests/ (speed does not
depend on their values).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--content-dir", required=True)
  p.add_argument("--style-dir", required=True)
  p.add_argument("--content-size", default="256")
  p.add_argument("--style-size", default="256")
  p.add_argument("--num-styles", default="2")
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--configs", default="one,threads,shards", help="comma-separated, from one,threads,shards,ray")
  args = p.parse_args()

  import seeded_weights

  tmp = Path(tempfile.mkdtemp(prefix="bench-dataset-"))
  vgg, decoder = seeded_weights.save(tmp)
  base = {**os.environ, "ADAIN_HOME": str(tmp / "home")}

  def env(gpus: str) -> dict:  # CUDA_VISIBLE_DEVICES picks GPUs; on a CPU host it is ignored
    return {**base, "CUDA_VISIBLE_DEVICES": gpus}

  two = {**env("0,1"), "XLA_FLAGS": f"{base.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2"}

  def command(out: Path, *more: str) -> list[str]:
    return [sys.executable, "-m", "adain.stylize_dataset", "--content-dir", args.content_dir,
            "--style-dir", args.style_dir, "--output-dir", str(out), "--content-size", args.content_size,
            "--style-size", args.style_size,
            "--num-styles", args.num_styles, "--vgg", str(vgg),
            "--decoder", str(decoder), *more]

  def timed(name: str, runs: list[tuple[list[str], dict]]) -> float:
    out = tmp / name
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for cmd, e in runs]
    if any(proc.wait() for proc in procs):
      sys.exit(f"{name}: a run failed: {runs}")
    return time.perf_counter() - start

  configs = {
      "one": lambda o: [(command(o), env("0"))],
      "threads": lambda o: [(command(o), two)],
      "shards": lambda o: [(command(o, "--shard", f"{i}/2"), env(str(i))) for i in (0, 1)],
      "ray": lambda o: [(command(o, "--ray"), base)],
  }
  configs = {name: configs[name] for name in ["one", *args.configs.split(",")]}  # one: the reference
  for name, runs in configs.items():  # compile and save the programs
    timed(name, runs(tmp / name))
  seconds = {name: [] for name in configs}
  for r in range(args.rounds):
    for name, runs in configs.items():
      seconds[name].append(timed(name, runs(tmp / name)))
      print(json.dumps({"round": r, "config": name, "seconds": round(seconds[name][-1], 2)}), flush=True)
  median = {k: statistics.median(v) for k, v in seconds.items()}
  images = sum(1 for f in (tmp / "one").rglob("*") if f.is_file() and not f.name.startswith("manifest"))
  print(json.dumps({"median_seconds": {k: round(v, 2) for k, v in median.items()},
                    "images": images, "images_per_s": {k: round(images / v, 3) for k, v in median.items()},
                    "speed_vs_one": {k: round(median["one"] / v, 3) for k, v in median.items()},
                    "cpu_count": os.cpu_count()}))
  shutil.rmtree(tmp)


if __name__ == "__main__":
  main()
