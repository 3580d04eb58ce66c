#!/usr/bin/env bash
# The accelerator numbers of the README, on a lent machine that has Python with jax (CUDA) but no
# network and no TensorFlow. Two steps:
#
#   bash tools/device_check.sh --wheels   # here, with network: fills .whl/ (about 40 MB)
#   bash tools/device_check.sh            # there, from the repo root, with .whl/ carried along
#
# --wheels downloads, with --no-deps, the exact versions installed in .venv of what `adain` and
# `train` need beyond jax, jaxlib and numpy (the device's own; jaxlib's CUDA build is far too big
# to carry): flax, optax, orbax-checkpoint, ml-collections, absl-py, pillow, tqdm and everything
# they require, transitively (msgpack, tensorstore, treescope, rich, etils, ...); it prints the
# list. TensorFlow is left out: train.bench and train.evaluate do not use it. Binary wheels are
# for this machine's Python (3.11, x86-64): the device's python3 must be the same.
# On the device, each wheel whose distribution is not installed goes into /tmp/site (pip
# --no-index --no-deps --target), which is put on PYTHONPATH with the repo root. Then it prints
# JSON lines: the device, train steps/s at the paper's setting (batch 8, 256 px) in fp32 and bf16
# (python -m train.bench), and train.evaluate's seconds per image at 512 px (if this checkout
# has train/evaluate.py) on seeded weights and the demo images (speed does not depend on them).
#
# Smaller settings (e.g. a CPU dry run): BATCH=2 CROP=32 STEPS=2 EVAL_SIZE=64 EVAL_CONTENTS=2.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=.whl

if [[ "${1:-}" == "--wheels" ]]; then
  rm -rf "$WHEELS" && mkdir -p "$WHEELS"
  dists=$(.venv/bin/python - <<'EOF'
import re
from importlib import metadata

skip = {"jax", "jaxlib", "numpy", "ml-dtypes", "opt-einsum", "scipy"}  # the device's jax brings these
todo, seen = ["flax", "optax", "orbax-checkpoint", "ml-collections", "absl-py", "pillow", "tqdm"], {}
while todo:
  name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
  if name in seen or name in skip:
    continue
  try:
    dist = metadata.distribution(name)
  except metadata.PackageNotFoundError:  # an optional requirement not installed here
    continue
  seen[name] = dist.version
  for req in dist.requires or []:
    if "extra ==" not in req:  # only what installing it plainly pulls in
      todo.append(re.match(r"[A-Za-z0-9_.-]+", req).group(0))
print(" ".join(f"{k}=={v}" for k, v in sorted(seen.items())))
EOF
  )
  echo "wheels: $dists"
  # shellcheck disable=SC2086
  .venv/bin/pip download -q --no-deps --only-binary=:all: -d "$WHEELS" $dists
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

if [[ ! -f train/evaluate.py ]]; then
  echo '{"evaluate": "skipped: no train/evaluate.py in this checkout"}'
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" - "$work" "${EVAL_CONTENTS:-10}" <<'EOF'
import os, sys
sys.path.insert(0, "tests")
import seeded_weights
from PIL import Image
from adain.weights import save_native

work, n = sys.argv[1], int(sys.argv[2])
save_native(os.path.join(work, "vgg.npz"), seeded_weights.vgg_state_dict(), "vgg")
save_native(os.path.join(work, "decoder.npz"), seeded_weights.decoder_state_dict(), "decoder")
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
