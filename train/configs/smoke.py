"""A tiny run on procedural images the pipeline draws itself, with a random (He-init) VGG:
checks the whole loop (data, jit, metrics, samples, checkpoints, export) on a CPU.

Command: `make train-smoke [MODEL=microast]`, or
  python -m train --workdir workdir/smoke --config train/configs/smoke.py[:microast]

Expected: under 2 minutes on 2 CPU cores (about half of it compiling): 30 steps of batch 2 on
32 px crops; metrics.jsonl, TensorBoard events, sample grids at steps 15 and 30, checkpoints at
steps 15 and 30 and the exported weights (WORKDIR/decoder.npz, MicroAST's four
WORKDIR/microast_*.npz). The random VGG makes the results useless for style transfer: this config
tests plumbing, not quality; MicroAST's (trained from scratch, at lr 1e-3) learns visibly, its
loss falling by about half. Running it again finds step 30 and exits.
"""

from __future__ import annotations

from train.configs import default, microast


def get_config(model: str = "adain"):
  c = (microast if model == "microast" else default).get_config()
  c.content = "synthetic:content"
  c.style = "synthetic:style"
  c.vgg = "random"
  c.load_size = 40
  c.crop_size = 32
  c.batch_size = 2
  c.max_steps = 30
  c.log_every = 5
  c.sample_every = 15
  c.save_every = 15
  if model == "microast":
    c.lr = 1e-3  # from scratch: 30 steps at the recipe's 1e-4 barely move it
  return c
