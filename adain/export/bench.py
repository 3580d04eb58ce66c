"""python -m adain.export.bench: ONNX Runtime's CPU images/s beside adain's own (JAX), as JSON lines.

One process exports a model with random weights (speed does not depend on them) and times both
runtimes on the same random images, alternating call by call so that both see the same machine
load: with a cached style code (content encoded, then generated and cropped) and with the style
image encoded for each content. The first call of each (JAX compiles; ONNX Runtime plans its
memory) is left out; the median of the rest is reported, with the ONNX / JAX speed ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time


def _median_seconds(calls: dict, repeats: int) -> dict[str, float]:
  """Each callable run once untimed, then ``repeats`` times in turn: median seconds per name."""
  for fn in calls.values():
    fn()
  times = {name: [] for name in calls}
  for _ in range(repeats):
    for name, fn in calls.items():
      t0 = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - t0)
  return {name: statistics.median(t) for name, t in times.items()}


def bench(sizes: list[int], repeats: int) -> list[dict]:
  import numpy as np
  import onnxruntime as ort

  from adain.export import onnx_graph
  from adain.inference.stylizer import Stylizer
  from adain.models.adain.codes import StyleCode
  from adain.models.adain.network import AdaIN

  model = AdaIN()
  stylizer = Stylizer(model)
  with tempfile.TemporaryDirectory(prefix="adain-export-bench-") as tmp:
    onnx_graph.write(model, tmp)
    encoder, generator = (ort.InferenceSession(os.path.join(tmp, f"{n}.onnx"),
                                               providers=["CPUExecutionProvider"])
                          for n in ("encoder", "generator"))

  def onnx_code(img):
    return StyleCode(*encoder.run(["style_mean", "style_std"], {"image": img[None]}))

  def onnx_generate(img, code):
    content = encoder.run(["content"], {"image": img[None]})[0]
    out = generator.run(["image"], {"content": content, "style_mean": code.mean,
                                    "style_std": code.std, "alpha": np.array(1.0, np.float32)})[0]
    return out[0, :img.shape[0], :img.shape[1]]

  rng = np.random.default_rng(0)
  rows = []
  for size in sizes:
    content, style = (rng.random((size, size, 3), dtype=np.float32) for _ in range(2))
    jax_code, ort_code = stylizer.encode_style(style), onnx_code(style)
    for cached in (True, False):
      calls = ({"jax": lambda: stylizer.generate(content, jax_code),
                "onnxruntime": lambda: onnx_generate(content, ort_code)} if cached else
               {"jax": lambda: stylizer.stylize(content, style),
                "onnxruntime": lambda: onnx_generate(content, onnx_code(style))})
      seconds = _median_seconds(calls, repeats)
      for runtime, s in seconds.items():
        row = {"bench": "export", "size": size, "cached_style": cached, "runtime": runtime,
               "images_per_s": round(1 / s, 4), "s_per_image": round(s, 3)}
        if runtime == "onnxruntime":
          row["vs_jax"] = round(seconds["jax"] / s, 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
  return rows


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m adain.export.bench", description=__doc__.split("\n")[0])
  p.add_argument("--sizes", default="256,512", help="comma-separated square image sizes")
  p.add_argument("--repeats", type=int, default=5, help="timed calls per runtime and size")
  args = p.parse_args(argv)
  import onnxruntime

  print(json.dumps({"bench": "export", "machine": platform.machine(), "cpus": os.cpu_count(),
                    "onnxruntime": onnxruntime.__version__}), flush=True)
  bench([int(s) for s in args.sizes.split(",")], args.repeats)
  return 0


if __name__ == "__main__":
  from adain import runtime

  runtime.set_up("adain.export.bench")  # as the JAX commands run
  sys.exit(main())
