"""python -m adain.bench: stylization speed and memory on this machine, as JSON lines.

For each network (``--models``: adain, the paper's, and microast) and size (N for N x N, or
WxH), a fresh process (so that its memory high-water mark is its own) times the
Stylizer on random images with random weights (speed does not depend on either): images per
second with a cached style code (``generate``) and with a style image encoded for each content
(``stylize``, as pytorch-AdaIN's test.py does), the one-off compile time of each, and the peak
resident memory. ``--tiled N`` adds one tiled stylization of an N x N image. ``--videos`` times
adain.pipelines.video.stylize_clip on generated clips (decode, stylize in batches, encode with sound-free
H.264) in frames per second, beside ``generate`` on one of its frames alone. Each measurement
has an empty ADAIN_HOME (no saved programs, adain.inference.programs), so compile times are real; except
for ``--process N``: one N x N image's whole ``python -m adain.stylize`` process with its
programs saved (by one untimed run) and its weights converted, timed beside the network's
compute for it in a warm process (the two alternated, round by round), and their ratio, in wall
and in CPU seconds. Training speed: ``python -m train.bench``. For the side-by-side with PyTorch
see tools/bench_torch_reference.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time


def peak_rss_mb() -> float:
  """This process's resident-memory high-water mark (Linux reports KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn, repeats: int) -> tuple[float, float]:
  """(first call's seconds, median of the next ``repeats``): the first one compiles."""
  t0 = time.perf_counter()
  fn()
  first = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return first, statistics.median(times)


def _stylizer(dtype: str, model: str = "adain"):
  """A Stylizer of network ``model`` with weights drawn as torch draws them."""
  import numpy as np

  from adain.inference.stylizer import Stylizer

  if model == "microast":
    from adain.models.microast.network import MicroAST as Network
  else:
    from adain.models.adain.network import AdaIN as Network
  return Stylizer(Network(), dtype), np.random.default_rng(0)


def _hw(size: str) -> tuple[int, int]:
  """N (square) or WxH as (H, W)."""
  w, _, h = size.partition("x")
  return int(h or w), int(w)


def bench_size(size: str, repeats: int, dtype: str, model: str) -> list[dict]:
  import jax

  stylizer, rng = _stylizer(dtype, model)
  h, w = _hw(size)
  content, style = (rng.random((h, w, 3), dtype="float32") for _ in range(2))
  repeats = repeats if h * w <= 1024 * 1024 else 1  # a 4K image takes seconds
  enc_first, enc_s = _timed(lambda: jax.block_until_ready(stylizer.encode_style(style)), repeats)
  code = stylizer.encode_style(style)
  gen_first, gen_s = _timed(lambda: stylizer.generate(content, code), repeats)
  _, sty_s = _timed(lambda: stylizer.stylize(content, style), repeats)
  common = {"bench": "stylize", "model": model, "size": size, "dtype": dtype,
            "peak_rss_mb": round(peak_rss_mb())}
  return [
      {**common, "cached_style": True, "images_per_s": round(1 / gen_s, 4), "s_per_image": round(gen_s, 3),
       "compile_s": round(gen_first - gen_s, 2)},
      {**common, "cached_style": False, "images_per_s": round(1 / sty_s, 4), "s_per_image": round(sty_s, 3),
       "compile_s": round(enc_first - enc_s + gen_first - gen_s, 2)},
  ]


def bench_tiled(size: str, tile: int | None, dtype: str, model: str) -> list[dict]:
  """One tiled stylization (tile None: chosen from available memory), compile included."""
  from adain.inference import memory, tiling

  stylizer, rng = _stylizer(dtype, model)
  h, w = _hw(size)
  content = rng.random((h, w, 3), dtype="float32")
  code = stylizer.encode_style(rng.random((256, 256, 3), dtype="float32"))
  tile = memory.choose_tile(h, w, stylizer.net) if tile is None else tile
  t0 = time.perf_counter()
  stylizer.generate(content, code, tile=tile)
  s = time.perf_counter() - t0
  return [{"bench": "tiled", "model": model, "size": size, "dtype": dtype, "tile": tile, "s": round(s, 1),
           "tiles": len(tiling.windows(h, tile, stylizer.net)) * len(tiling.windows(w, tile, stylizer.net))
           if tile else 1,
           "peak_rss_mb": round(peak_rss_mb())}]


def bench_video(size: str, frames: int, dtype: str, model: str) -> list[dict]:
  """stylize_clip's frames/s on a W x H clip (batches of 1 and 4) beside the still-image rate
  of one of its frames; compiling is done before timing."""
  import fractions
  import tempfile
  from pathlib import Path

  import numpy as np

  from adain.pipelines import video
  from adain.media import video_io as media

  h, w = _hw(size)
  stylizer, rng = _stylizer(dtype, model)
  code = stylizer.encode_style(rng.random((256, 256, 3), dtype="float32"))
  frame = rng.random((h, w, 3), dtype="float32")
  _, still_s = _timed(lambda: stylizer.generate(frame, code), 2)
  lines = []
  with tempfile.TemporaryDirectory() as d:
    src = Path(d) / "clip.mp4"
    clip = [media.Frame(np.roll(frame, 4 * i, axis=1), i) for i in range(frames)]
    media.write_video(src, clip, fractions.Fraction(1, 25), fractions.Fraction(25))
    for batch in (1, 4):  # frames is a multiple of 4: no batch is filled up
      run = lambda: video.stylize_clip(stylizer, src, Path(d) / "out.mp4", code,  # noqa: E731
                                       content_size=0, batch=batch)
      run()  # compiles this batch size
      summary = run()
      lines.append({"bench": "video", "model": model, "size": size, "dtype": dtype, "frames": frames, "batch": batch,
                    "frames_per_s": round(summary.fps, 4), "still_images_per_s": round(1 / still_s, 4),
                    "ratio_to_still": round(summary.fps * still_s, 3),
                    "peak_rss_mb": round(peak_rss_mb())})
  return lines


def bench_process(size: int, rounds: int) -> list[dict]:
  """One image's whole ``python -m adain.stylize`` process beside the network's compute for it.

  Random weights saved as native .npz and random size x size content and style PNGs, in a
  temporary folder that is also ADAIN_HOME (the saved programs, made by one untimed run).
  Each round times a fresh process (start, imports, weights, cached programs, compute, saving;
  started without this process's huge-page setting, as from a shell) and then, in this warm
  process, ``Stylizer.stylize`` of the same images (encode style, encode content, decode).
  """
  import tempfile
  from pathlib import Path

  import numpy as np

  from adain.media import images
  from adain.models.adain.network import AdaIN
  from adain.runtime import HUGE_PAGES
  from adain.inference.stylizer import Stylizer
  from adain.models.adain.weights import decoder_state_dict, encoder_state_dict, save_native

  with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    model, rng = AdaIN(), np.random.default_rng(0)
    vgg, decoder, content, style = d / "vgg.npz", d / "decoder.npz", d / "content.png", d / "style.png"
    save_native(vgg, encoder_state_dict(model), "vgg")
    save_native(decoder, decoder_state_dict(model), "decoder")
    for path in (content, style):
      images.save_image(path, rng.random((size, size, 3), dtype="float32"))
    cmd = [sys.executable, "-m", "adain.stylize", "--content", str(content), "--style", str(style),
           "--vgg", str(vgg), "--decoder", str(decoder), "--output", str(d / "out"),
           "--content-size", str(size), "--style-size", str(size)]
    tunables = ":".join(t for t in os.environ.get("GLIBC_TUNABLES", "").split(":") if t and t != HUGE_PAGES)
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env.update({"ADAIN_HOME": str(d), **({"GLIBC_TUNABLES": tunables} if tunables else {})})
    subprocess.run(cmd, env=env, check=True, capture_output=True)  # saves the programs

    os.environ["ADAIN_HOME"] = str(d)
    stylizer = Stylizer.from_files(vgg, decoder)
    c, s = images.load_image(content, size), images.load_image(style, size)
    stylizer.stylize(c, s)  # loads the programs
    whole, compute, whole_cpu, compute_cpu = [], [], [], []
    for _ in range(rounds):  # alternated, so that a busy machine slows both alike
      t0, cpu0 = time.perf_counter(), _children_cpu_s()
      subprocess.run(cmd, env=env, check=True, capture_output=True)
      whole.append(time.perf_counter() - t0)
      whole_cpu.append(_children_cpu_s() - cpu0)
      t0, cpu0 = time.perf_counter(), time.process_time()
      stylizer.stylize(c, s)
      compute.append(time.perf_counter() - t0)
      compute_cpu.append(time.process_time() - cpu0)
  w, n = statistics.median(whole), statistics.median(compute)
  wc, nc = statistics.median(whole_cpu), statistics.median(compute_cpu)
  return [{"bench": "process", "size": size, "rounds": rounds, "whole_process_s": round(w, 3),
           "compute_s": round(n, 3), "ratio": round(w / n, 3),
           "ratio_each": [round(a / b, 3) for a, b in zip(whole, compute)],
           "whole_process_cpu_s": round(wc, 3), "compute_cpu_s": round(nc, 3),
           "cpu_ratio": round(wc / nc, 3), "peak_rss_mb": round(peak_rss_mb())}]


def _children_cpu_s() -> float:
  """User + system seconds of this process's finished children."""
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m adain.bench", description=__doc__.split("\n")[0])
  p.add_argument("--models", default="adain,microast", help="comma-separated networks")
  p.add_argument("--sizes", default="256,512,1024,3840x2160", help="comma-separated image sizes: N or WxH")
  p.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (median)")
  p.add_argument("--tiled", type=int, metavar="N", help="also time one tiled N x N stylization")
  p.add_argument("--tile", type=int, metavar="N", help="tile size for --tiled (default: automatic)")
  p.add_argument("--videos", default="640x360,1280x720", help="comma-separated WxH clip sizes ('' for none)")
  p.add_argument("--frames", type=int, default=4, help="frames per benchmark clip (a multiple of 4)")
  p.add_argument("--process", type=int, default=512, metavar="N",
                 help="time one N x N image's whole python -m adain.stylize process beside its compute (0: not)")
  p.add_argument("--rounds", type=int, default=5, help="alternated rounds of --process (median)")
  p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                 help="network precision (bfloat16 is for accelerators)")
  p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)  # (kind, size, model): one measurement
  args = p.parse_args(argv)
  if args.child:
    import tempfile

    kind, size, model = args.child
    with tempfile.TemporaryDirectory(prefix="adain-bench-") as home:
      os.environ["ADAIN_HOME"] = home  # no saved programs (adain.inference.programs): compile times are real
      if kind == "video":
        lines = bench_video(size, args.frames, args.dtype, model)
      elif kind == "process":
        lines = bench_process(int(size), args.rounds)
      elif kind == "size":
        lines = bench_size(size, args.repeats, args.dtype, model)
      else:
        lines = bench_tiled(size, args.tile, args.dtype, model)
    for line in lines:
      print(json.dumps(line), flush=True)
    return 0

  import jax

  print(json.dumps({"bench": "machine", "device": str(jax.devices()[0]), "jax": jax.__version__,
                    "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "xla_flags": os.environ.get("XLA_FLAGS", ""),
                    "glibc_tunables": os.environ.get("GLIBC_TUNABLES", "")}), flush=True)
  models = [m for m in args.models.split(",") if m]
  jobs = [("process", args.process, "adain")] if args.process else []
  jobs += [("size", s, m) for s in args.sizes.split(",") if s for m in models]  # side by side
  if args.tiled:
    jobs += [("tiled", args.tiled, m) for m in models]
  jobs += [("video", s, m) for s in args.videos.split(",") if s for m in models]
  for kind, size, model in jobs:
    cmd = [sys.executable, "-m", "adain.bench", "--child", kind, str(size), model, "--repeats", str(args.repeats),
           "--frames", str(args.frames), "--rounds", str(args.rounds), "--dtype", args.dtype]
    if args.tile is not None:
      cmd += ["--tile", str(args.tile)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    sys.stdout.write(done.stdout)
    if done.returncode:
      print(json.dumps({"bench": kind, "model": model, "size": size, "error": f"exit status {done.returncode}"}),
            flush=True)
  print(json.dumps({"bench": "train", "see": "python -m train.bench"}), flush=True)
  return 0


def entry() -> None:
  """``python -m adain.bench``: the process set up (adain.runtime), then the command."""
  from adain import runtime

  runtime.set_up("adain.bench")
  sys.exit(main())
