#!/usr/bin/env bash
# The accelerator numbers of the README, on a lent machine that has Python with jax (CUDA) but no
# network and no TensorFlow. Two steps:
#
#   bash tools/device_check.sh --wheels   # here, with network: fills .whl/ (about 40 MB)
#   bash tools/device_check.sh            # there, from the repo root, with .whl/ carried along
#
# --wheels downloads, with --no-deps, the exact versions installed in .venv of what the lent
# machine lacks (device/KINDS.md lists its packages: jax, flax, optax, orbax-checkpoint,
# absl-py, pillow, tqdm, matplotlib are there; ml-collections and PyAV are not), as binary wheels
# for its Python (3.12, x86-64), whatever this machine's Python is. TensorFlow is left out:
# train.bench, train.evaluate and adain.bench do not use it.
# On the device, each wheel whose distribution is not installed goes into /tmp/site (pip
# --no-index --no-deps --target), which is put on PYTHONPATH with the repo root. Then it prints
# JSON lines: the device, train steps/s at the paper's setting (batch 8, 256 px) in fp32 and bf16
# (python -m train.bench), stylization images/s at 512 px and video frames/s at 1280x720 and
# 1920x1080 in fp32 and bf16 for both networks (python -m adain.bench), MicroAST and AdaIN at
# 3840x2160, style augmentation beside a ResNet-50 step (python -m adain.augment.bench), and train.evaluate's seconds per image at
# 512 px on seeded weights and the demo images (speed does not depend on them); and, where ray[data]
# is installed, python -m adain.stylize_dataset on one host and with --ray (DATASET_BATCH images per
# call, one GPU per actor).
#
# Then the app's Live tab: frames/s of Studio.live_frame at each live frame size (LIVE_FRAMES each).
# Smaller settings (e.g. a CPU dry run): BATCH=2 CROP=32 STEPS=2 SIZES=64 VIDEOS=64x48 FRAMES=4
# EVAL_SIZE=64 EVAL_CONTENTS=2 LIVE_FRAMES=2 AUG_BATCH=2 AUG_SIZE=64.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=.whl

if [[ "${1:-}" == "--wheels" ]]; then
  rm -rf "$WHEELS" && mkdir -p "$WHEELS"
  dists=$(.venv/bin/python -c "
from importlib import metadata
print(' '.join(f'{n}=={metadata.version(n)}' for n in ('ml-collections', 'av')))")
  echo "wheels: $dists"
  # shellcheck disable=SC2086
  .venv/bin/pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$WHEELS" $dists
  du -sh "$WHEELS"
  exit 0
fi

if compgen -G "$WHEELS/*.whl" > /dev/null; then
  missing=()
  for whl in "$WHEELS"/*.whl; do
    dist=$(basename "$whl" | cut -d- -f1)
    "$PY" -c "import importlib.metadata as m, sys; m.distribution(sys.argv[1])" "$dist" 2>/dev/null \
      || missing+=("$whl")
  done
  if (( ${#missing[@]} )); then
    echo "installing ${#missing[@]} wheels into /tmp/site" >&2
    "$PY" -m pip install -q --upgrade --no-index --no-deps --target /tmp/site "${missing[@]}"
  fi
fi
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"

"$PY" -c "
import json, jax
d = jax.devices()[0]
print(json.dumps({'device': d.device_kind, 'platform': d.platform, 'count': jax.device_count(),
                  'jax': jax.__version__}))"
"$PY" -m train.bench --batch_size "${BATCH:-8}" --crop_size "${CROP:-256}" --steps "${STEPS:-20}" --bf16

for dtype in float32 bfloat16; do
  "$PY" -m adain.bench --dtype "$dtype" --sizes "${SIZES:-512}" --videos "${VIDEOS:-1280x720,1920x1080}" \
    --frames "${FRAMES:-16}"
done
# Style augmentation (StyleAugment) of a 224 px batch of 32 beside a ResNet-50 SGD step on it.
"$PY" -m adain.augment.bench --batch "${AUG_BATCH:-32}" --size "${AUG_SIZE:-224}" --repeats 10
# MicroAST at 4K beside AdaIN (the paper: about 0.5 s a 4K image on an RTX 2080).
"$PY" -m adain.bench --sizes "${SIZES_4K:-3840x2160}" --videos "" --process 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The app's Live tab: a 640x480 webcam frame through Studio.live_frame and live_file (the model and
# the JPEG; no Gradio or browser there) at each frame size, with each model: the frames/s it can reach.
"$PY" - "$work/live" "${LIVE_FRAMES:-20}" <<'EOF'
import json, os, shutil, sys, time
sys.path.insert(0, "tests")
import numpy as np
import seeded_weights
from PIL import Image
from adain.app.studio import LIVE_SIZES, LiveStream, Studio
from adain.stylizer import Stylizer

work, n = sys.argv[1], int(sys.argv[2])
os.makedirs(work)
microast = shutil.copytree("tests/fixtures/microast/weights", os.path.join(work, "microast"))
studio = Studio({"adain": Stylizer.from_files(*seeded_weights.save(work)),
                 "microast": Stylizer.from_files(model="microast", weights=microast)}.__getitem__, work)
frame = Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8))
for model, size in ((m, s) for m in ("adain", "microast") for s in LIVE_SIZES):
  stream = LiveStream(target_ms=0)
  def step():
    studio.live_file(stream, studio.live_frame(stream, frame, ["adain/assets/style.png"], size=size,
                                               model=model))
  step()  # compiles
  start = time.perf_counter()
  for _ in range(n):
    step()
  ms = 1000 * (time.perf_counter() - start) / n
  print(json.dumps({"model": model, "live_size": size, "ms_per_frame": round(ms, 1), "frames_per_s": round(1000 / ms, 1)}))
EOF
"$PY" - "$work" "${EVAL_CONTENTS:-10}" <<'EOF'
import os, sys
sys.path.insert(0, "tests")
import seeded_weights
from PIL import Image

work, n = sys.argv[1], int(sys.argv[2])
seeded_weights.save(work)  # vgg.npz, decoder.npz
for kind in ("content", "style"):
  os.makedirs(os.path.join(work, kind))
  with Image.open(f"adain/assets/{kind}.png") as im:
    for i in range(n if kind == "content" else 1):  # distinct images: rotations and mirrors
      out = im.rotate(90 * (i % 4), expand=True)
      out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if i // 4 % 2 else out
      out.save(os.path.join(work, kind, f"{kind}_{i}.png"))
EOF
size=${EVAL_SIZE:-512}
"$PY" -m train.evaluate --decoder "$work/decoder.npz" --vgg "$work/vgg.npz" \
  --content "$work/content" --style "$work/style" --content-size "$size" --style-size "$size" \
  --output "$work/eval" > /dev/null
"$PY" -c "
import json, sys
models = json.load(open(sys.argv[1]))['models']
for name, r in models.items():
  print(json.dumps({'evaluate': name, 'size': int(sys.argv[2]), 'pairs': len(r.get('pairs', [])),
                    'seconds_per_image': r['seconds_per_image']}))" "$work/eval/results.json" "$size"

# python -m adain.stylize_dataset on the same images, one host against --ray (a local Ray started
# for the run; if ray[data] is there, e.g. carried in .whl/): one actor per GPU, one GPU each,
# DATASET_BATCH images per call in both. Each summary line (images/s) as JSON.
if "$PY" -c "import ray.data" 2>/dev/null; then
  for engine in one-host ray; do
    "$PY" -m adain.stylize_dataset --content-dir "$work/content" --style-dir "$work/style" \
      --output-dir "$work/dataset-$engine" --content-size "$size" --style-size "$size" \
      --batch-size "${DATASET_BATCH:-8}" --vgg "$work/vgg.npz" --decoder "$work/decoder.npz" \
      $([[ $engine == ray ]] && echo --ray) 2>&1 >/dev/null | tail -n 1 \
      | "$PY" -c "import json, sys; print(json.dumps({'stylize_dataset': sys.argv[1], 'gpus_per_actor': 1,
               'batch_size': int(sys.argv[2]), 'summary': sys.stdin.read().strip()}))" "$engine" "${DATASET_BATCH:-8}"
  done
fi
