"""Side-by-side timing of pytorch-AdaIN and adain: stylizing a folder, or the training step.

Run with the fixtures virtualenv (torch, numpy, pillow); it runs ours with the main .venv:

  .venv-fixtures/bin/python tools/bench_torch_reference.py --content-dir DIR --style FILE
  .venv-fixtures/bin/python tools/bench_torch_reference.py --train [--batch-size 8 --crop-size 256]
      [--model microast]

``--train`` alternates, for --rounds rounds, a process timing pytorch-AdaIN's training step
(net.py's forward, backward and train.py's Adam step, re-implemented below) and one timing ours
(``python -m train.bench``), each on random batches after warm-up steps; the summary gives the
median steps/s of each and ours/torch (above 1: we are faster), also round by round.
``--model microast`` times MicroAST's recipe instead: its Net.forward, backward and Adam over its
four parts (tools/make_train_fixtures.py's re-implementation, on the seeded fixture weights).

Each round times three whole processes, alternating so that a busy machine slows all of them
alike: pytorch-AdaIN's test.py loop (below, re-implemented from its net.py and test.py as
tools/make_parity_fixtures.py does), ``python -m adain.stylize`` with the style image, and with
the style's code (.npz, from ``python -m adain.encode_style``); and, in a fourth process, the
network's own compute for the same pairs in a warm process (``Stylizer.stylize`` after a warm-up
call, under the huge-pages setting, as ``python -m adain.bench --process`` measures it). The JSON
lines give each run's seconds, and the summary the medians, torch/ours ratios (above 1: we are
faster) and ours over the compute. The first round of ours runs with nothing compiled yet and is
reported apart (``cold``). A folder of one image gives one image's whole process.

Weights are the seeded stand-ins of tests/seeded_weights.py, saved with torch.save as .pth, which
both sides read: speed does not depend on their values. ``--prepare SRC DST`` writes square
centre crops of SRC's images at --size pixels into DST (``--width``: centre crops of that
aspect, --size high), to get a folder of equal-size images.

``--model microast --weights DIR`` (the four published ``*_iter_160000.pth.tar``) alternates
MicroAST's own PyTorch inference (its test_microAST.py loop: per pair, load both images, the
style encoder and modulator, the content encoder, the decoder, save; the modules of
tools/make_microast_fixtures.py, torch.no_grad, --threads threads) with our network's jitted
compute in a warm process on the same pairs: each JSON line gives a process's seconds per
image for the style encoded with each pair (``per_pair_s``; torch's also with its loading and
saving, ``loop_s``) and for the content alone with the style's code computed once
(``cached_code_s``); the summary their medians and torch/ours (above 1: we are faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
MAIN_PYTHON = ROOT / ".venv" / "bin" / "python"

from adain.runtime import HUGE_PAGES  # noqa: E402  (stdlib only: the torch venv imports it too)


def prepare(src: Path, dst: Path, size: int, width: int | None = None) -> None:
  """Centre crops of every image in src of aspect width / size (default square), scaled to
  size high and width wide, as PNG in dst."""
  dst.mkdir(parents=True, exist_ok=True)
  width = width or size
  for f in sorted(src.iterdir()):
    with Image.open(f) as im:
      im = im.convert("RGB")
      scale = min(im.width / width, im.height / size)
      w, h = round(width * scale), round(size * scale)
      left, top = (im.width - w) // 2, (im.height - h) // 2
      im = im.crop((left, top, left + w, top + h)).resize((width, size), Image.BICUBIC)
      im.save(dst / f"{f.stem}.png")


def write_weights(folder: Path) -> tuple[Path, Path]:
  import torch

  import seeded_weights

  paths = folder / "vgg_normalised.pth", folder / "decoder.pth"
  for path, sd in zip(paths, (seeded_weights.vgg_state_dict(full=True), seeded_weights.decoder_state_dict())):
    torch.save({k: torch.from_numpy(v) for k, v in sd.items()}, path)
  return paths


def torch_run(content_dir: Path, style: Path, vgg: Path, decoder: Path, output: Path) -> None:
  """pytorch-AdaIN's test.py for a folder and one style: per pair, load, encode both, decode, save.

  Prints one JSON line with per-image seconds (the process's total is timed by its parent).
  """
  import torch

  import make_parity_fixtures as ref

  vgg_net, _, decoder_net = ref.reference_modules(
      {k: v.numpy() for k, v in torch.load(vgg).items()},
      {k: v.numpy() for k, v in torch.load(decoder).items()})

  def load(path):  # test.py's transform of an image whose shorter side already has its size
    with Image.open(path) as im:
      arr = np.asarray(im.convert("RGB"), np.float32) / 255.0
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())[None]

  output.mkdir(parents=True, exist_ok=True)
  times = []
  for c in sorted(content_dir.iterdir()):
    t0 = time.perf_counter()
    with torch.no_grad():
      out = ref.style_transfer(vgg_net, decoder_net, load(c), load(style))
    Image.fromarray(ref.saved_uint8(out)).save(output / f"{c.stem}_stylized_{style.stem}.jpg")
    times.append(time.perf_counter() - t0)
  print(json.dumps({"per_image_s": times, "threads": torch.get_num_threads()}))


def compute_run(content_dir: Path, style: Path, vgg: Path, decoder: Path) -> None:
  """The network's compute for each pair in a warm process, as one JSON line of seconds."""
  from adain.media import images
  from adain.inference.stylizer import Stylizer

  stylizer = Stylizer.from_files(vgg, decoder)
  style_hw3 = images.load_image(style, 0)
  contents = [images.load_image(c, 0) for c in sorted(content_dir.iterdir())]
  for c in contents:  # compiles (or loads) each size
    stylizer.stylize(c, style_hw3)
  times = []
  for c in contents:
    t0 = time.perf_counter()
    stylizer.stylize(c, style_hw3)
    times.append(time.perf_counter() - t0)
  print(json.dumps({"per_image_s": times}))


def microast_torch_run(content_dir: Path, style: Path, weights: Path, threads: int) -> None:
  """MicroAST's test_microAST.py loop for a folder and one style, as one JSON line of seconds
  per image: the whole loop body, its network calls, and the content's with a cached code."""
  import torch

  import make_microast_fixtures as ref
  from make_parity_fixtures import saved_uint8  # torchvision's save_image, as its test loop saves

  torch.set_num_threads(threads)
  net = ref.Net()
  for part, module in net.parts.items():
    module.load_state_dict(torch.load(weights / ref.FILENAMES[part], weights_only=True))

  def load(path):
    with Image.open(path) as im:
      return ref.to_nchw(np.asarray(im.convert("RGB")))

  output = Path(tempfile.mkdtemp())
  loop, pair, cached = [], [], []
  contents = sorted(content_dir.iterdir())
  with torch.no_grad():
    code = net.style_code(load(style))
    net.stylize(load(contents[0]), code)  # warm-up: oneDNN sets up its kernels on first use
    for c in contents:
      t0 = time.perf_counter()
      content, style_image = load(c), load(style)
      t1 = time.perf_counter()
      out = net.stylize(content, net.style_code(style_image))
      t2 = time.perf_counter()
      Image.fromarray(saved_uint8(out)).save(output / f"{c.stem}_stylized_{style.stem}.jpg")
      loop.append(time.perf_counter() - t0)
      pair.append(t2 - t1)
      t0 = time.perf_counter()
      net.stylize(content, code)
      cached.append(time.perf_counter() - t0)
  print(json.dumps({"loop_s": loop, "per_pair_s": pair, "cached_code_s": cached,
                    "threads": torch.get_num_threads()}))


def microast_compute_run(content_dir: Path, style: Path, weights: Path) -> None:
  """Our MicroAST's jitted compute for each pair in a warm process (after a warm-up call per
  size), as one JSON line of seconds per image, as microast_torch_run's."""
  from adain.runtime import use_xla_flag

  use_xla_flag()  # as the commands set it, before JAX starts
  import jax
  from flax import nnx

  from adain.media import images
  from adain.models.microast import weights as microast_weights

  model = microast_weights.model_from_state_dicts(microast_weights.state_dicts(weights, download=False))
  encode_style = nnx.jit(lambda m, s: m.encode_style(s))
  stylize = nnx.jit(lambda m, c, code: m.generate(m.encode_content(c), code)[:, :c.shape[1], :c.shape[2]])
  style_image = images.load_image(style, 0)[None]
  contents = [images.load_image(c, 0)[None] for c in sorted(content_dir.iterdir())]

  def pair(c):
    return jax.block_until_ready(stylize(model, c, encode_style(model, style_image)))

  code = encode_style(model, style_image)
  for c in contents:  # compiles each size
    pair(c)
  pairs, cached = [], []
  for c in contents:
    t0 = time.perf_counter()
    pair(c)
    pairs.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    jax.block_until_ready(stylize(model, c, code))
    cached.append(time.perf_counter() - t0)
  print(json.dumps({"per_pair_s": pairs, "cached_code_s": cached}))


def microast_side_by_side(args) -> None:
  """Alternates MicroAST's torch loop and our compute (a process each, round by round) on the
  same pairs; prints each run and the summary of per-image medians."""
  paths = [str(args.content_dir), str(args.style), str(args.weights)]
  runs = {
      "torch": [sys.executable, __file__, "--microast-torch-only", *paths, f"--threads={args.threads}"],
      "compute": [str(MAIN_PYTHON), __file__, "--microast-compute-only", *paths],
  }
  env = {**os.environ, "GLIBC_TUNABLES": HUGE_PAGES}
  per_image: dict[str, dict[str, list[float]]] = {k: {} for k in runs}
  for r in range(args.rounds):
    for name, cmd in runs.items():
      s, out = timed(cmd, env)
      line = json.loads(out.strip().splitlines()[-1])
      for key in ("loop_s", "per_pair_s", "cached_code_s"):
        if key in line:
          per_image[name].setdefault(key, []).extend(line[key])
      print(json.dumps({"run": name, "round": r, "process_s": round(s, 2),
                        **{k: [round(t, 3) for t in v] for k, v in line.items() if k.endswith("_s")}}),
            flush=True)
  med = {name: {k: round(statistics.median(v), 4) for k, v in keys.items()}
         for name, keys in per_image.items()}
  print(json.dumps({"summary": med, "threads": args.threads, **{
      f"torch_over_ours_{k}": round(med["torch"][k] / med["compute"][k], 3)
      for k in ("per_pair_s", "cached_code_s")}}))


def torch_train_run(batch_size: int, crop_size: int, steps: int, model: str = "adain") -> None:
  """Steps/s of pytorch-AdaIN's train.py step (or MicroAST's train_microAST.py step) on a random
  batch, as one JSON line."""
  import torch

  import make_parity_fixtures as ref
  import make_train_fixtures as train_ref
  import seeded_weights

  if model == "microast":
    vgg, net, optimizer = train_ref.microast_training()

    def total(content, style):  # net_microAST.py's Net.forward, train_microAST.py's weights
      loss_c, loss_s, loss_k = train_ref.microast_forward(vgg, net, content, style)
      return loss_c + 3.0 * loss_s + 3.0 * loss_k
  else:
    vgg, decoder, optimizer = ref.reference_training(seeded_weights.decoder_state_dict())

    def total(content, style):  # net.py's Net.forward, train.py's weights
      loss_c, loss_s = ref.net_forward(vgg, decoder, content, style)
      return loss_c + 10.0 * loss_s

  def step(content, style):  # the loop body
    loss = total(content, style)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()

  rng = np.random.default_rng(0)
  content, style = (torch.from_numpy(rng.random((batch_size, 3, crop_size, crop_size),
                                                dtype=np.float32)) for _ in range(2))
  t0 = time.perf_counter()
  step(content, style)
  first = time.perf_counter() - t0
  times = []
  for _ in range(steps):  # timed one by one, as train.bench does: the median of steps
    t0 = time.perf_counter()
    step(content, style)
    times.append(time.perf_counter() - t0)
  print(json.dumps({"steps_per_sec": 1 / statistics.median(times), "first_step_sec": first,
                    "threads": torch.get_num_threads()}))


def train_side_by_side(args) -> None:
  """Alternates torch and ours (a process each), prints each run and the medians' ratio."""
  sizes = {"batch_size": args.batch_size, "crop_size": args.crop_size, "steps": args.steps}
  runs = {
      "torch": [sys.executable, __file__, "--train-torch-only", f"--model={args.model}",
                *(f"--{k.replace('_', '-')}={v}" for k, v in sizes.items())],
      "ours": [str(MAIN_PYTHON), "-m", "train.bench", *(f"--{k}={v}" for k, v in sizes.items()),
               f"--models={args.model}"],
  }
  rates: dict[str, list[float]] = {k: [] for k in runs}
  for r in range(args.rounds):
    for name, cmd in runs.items():
      _, out = timed(cmd, {**os.environ})
      line = json.loads(out.strip().splitlines()[-1])
      rates[name].append(line["steps_per_sec"])
      print(json.dumps({"run": name, "round": r, "steps_per_sec": round(line["steps_per_sec"], 4),
                        "first_step_sec": round(line["first_step_sec"], 2)}), flush=True)
  med = {k: statistics.median(v) for k, v in rates.items()}
  by_round = [o / t for o, t in zip(rates["ours"], rates["torch"])]  # neighbours: drift cancels
  print(json.dumps({"summary": {k: round(v, 4) for k, v in med.items()}, "model": args.model,
                    "batch_size": args.batch_size, "crop_size": args.crop_size,
                    "ours_over_torch": round(med["ours"] / med["torch"], 3),
                    "ours_over_torch_by_round": [round(r, 3) for r in by_round]}))


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
  t0 = time.perf_counter()
  done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
  return time.perf_counter() - t0, done.stdout


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--content-dir", type=Path)
  p.add_argument("--style", type=Path)
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--prepare", nargs=2, type=Path, metavar=("SRC", "DST"))
  p.add_argument("--size", type=int, default=512)
  p.add_argument("--train", action="store_true", help="time the training step instead")
  p.add_argument("--batch-size", type=int, default=8)
  p.add_argument("--crop-size", type=int, default=256)
  p.add_argument("--steps", type=int, default=5, help="timed training steps per run")
  p.add_argument("--width", type=int, help="--prepare's width (default --size: square)")
  p.add_argument("--model", choices=("adain", "microast"), default="adain",
                 help="the network to time (with --train: the recipe)")
  p.add_argument("--weights", type=Path, help="--model microast: the published weights' folder")
  p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch's threads")
  p.add_argument("--train-torch-only", action="store_true", help=argparse.SUPPRESS)
  p.add_argument("--microast-torch-only", nargs=3, type=Path, metavar=("CONTENT_DIR", "STYLE", "WEIGHTS"),
                 help=argparse.SUPPRESS)
  p.add_argument("--microast-compute-only", nargs=3, type=Path, metavar=("CONTENT_DIR", "STYLE", "WEIGHTS"),
                 help=argparse.SUPPRESS)
  p.add_argument("--torch-only", nargs=4, type=Path, metavar=("CONTENT_DIR", "STYLE", "VGG", "DECODER"),
                 help=argparse.SUPPRESS)
  p.add_argument("--compute-only", nargs=4, type=Path, metavar=("CONTENT_DIR", "STYLE", "VGG", "DECODER"),
                 help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.prepare:
    prepare(*args.prepare, args.size, args.width)
    return
  if args.microast_torch_only:
    microast_torch_run(*args.microast_torch_only, args.threads)
    return
  if args.microast_compute_only:
    microast_compute_run(*args.microast_compute_only)
    return
  if args.train_torch_only:
    torch_train_run(args.batch_size, args.crop_size, args.steps, args.model)
    return
  if args.train:
    train_side_by_side(args)
    return
  if args.torch_only:
    torch_run(*args.torch_only, Path(tempfile.mkdtemp()))
    return
  if args.compute_only:
    compute_run(*args.compute_only)
    return
  if not (args.content_dir and args.style):
    p.error("--content-dir and --style are needed")
  if args.model == "microast":
    if not args.weights:
      p.error("--model microast needs --weights")
    microast_side_by_side(args)
    return

  with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    vgg, decoder = write_weights(tmp)
    env = {**os.environ, "ADAIN_HOME": str(tmp / "home")}
    n = len(list(args.content_dir.iterdir()))
    ours = [str(MAIN_PYTHON), "-m", "adain.stylize", "--content-dir", str(args.content_dir),
            "--vgg", str(vgg), "--decoder", str(decoder), "--content-size", "0", "--style-size", "0",
            "--output", str(tmp / "ours")]
    code = tmp / "style.npz"
    subprocess.run([str(MAIN_PYTHON), "-m", "adain.encode_style", str(args.style), "--output", str(code),
                    "--vgg", str(vgg), "--style-size", "0"], check=True, capture_output=True,
                   env={**env, "ADAIN_HOME": str(tmp / "other")})  # ours_cold: nothing compiled yet
    runs = {
        "torch": [sys.executable, __file__, "--torch-only", str(args.content_dir), str(args.style),
                  str(vgg), str(decoder)],
        "ours": ours + ["--style", str(args.style)],
        "ours_cached_code": ours + ["--style", str(code)],
        "compute": [str(MAIN_PYTHON), __file__, "--compute-only", str(args.content_dir), str(args.style),
                    str(vgg), str(decoder)],
    }
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(args.rounds + 1):
      for name, cmd in runs.items():
        s, out = timed(cmd, {**env, "GLIBC_TUNABLES": HUGE_PAGES} if name == "compute" else env)
        if name == "compute":
          s = sum(json.loads(out)["per_image_s"])
        if r == 0 and name == "ours":
          print(json.dumps({"run": "ours_cold", "s": round(s, 2), "images": n}), flush=True)
          continue
        seconds[name].append(s)
        line = {"run": name, "round": r, "s": round(s, 2), "images": n}
        if name in ("torch", "compute"):
          line["per_image_s"] = [round(t, 2) for t in json.loads(out)["per_image_s"]]
        print(json.dumps(line), flush=True)
    med = {k: statistics.median(v) for k, v in seconds.items() if v}
    print(json.dumps({"summary": {k: round(v, 2) for k, v in med.items()},
                      "torch_over_ours": round(med["torch"] / med["ours"], 3),
                      "torch_over_ours_cached_code": round(med["torch"] / med["ours_cached_code"], 3),
                      "ours_over_compute": round(med["ours"] / med["compute"], 3)}))


if __name__ == "__main__":
  main()
