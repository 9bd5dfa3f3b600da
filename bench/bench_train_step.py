"""Throughput of one CycleGAN step (images/s) for the generator/discriminator in params.yaml.

    .venv/bin/python bench/bench_train_step.py [--params params.yaml] [--steps 20]

Warm-up steps are excluded. Prints one line per batch size."""

from __future__ import annotations

import argparse
import time

import torch

from cyclelab import config
from cyclelab.models import build_discriminator, build_generator
from cyclelab.training.cyclegan import CycleGAN
from cyclelab.training.runtime import make_runtime, seed_everything


def main() -> None:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    cfg = config.load(args.params)
    runtime = make_runtime(cfg.device)
    size = cfg.data.image_size
    print(f"device {runtime.device}, {torch.get_num_threads()} threads, {size} px, "
          f"ngf {cfg.model.ngf}, {cfg.model.n_blocks} blocks")
    for batch_size in args.batch_sizes:
        seed_everything(cfg.seed)
        m = cfg.model
        gan = CycleGAN(build_generator(m), build_generator(m), build_discriminator(m),
                       build_discriminator(m), cfg.train, runtime)
        batch = (torch.rand(batch_size, 3, size, size) * 2 - 1,
                 torch.rand(batch_size, 3, size, size) * 2 - 1)
        for _ in range(3):
            gan.step(batch)
        if runtime.cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(args.steps):
            gan.step(batch)
        if runtime.cuda:
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - started) / args.steps
        print(f"batch {batch_size}: {seconds * 1000:.0f} ms/step, "
              f"{batch_size / seconds:.1f} image pairs/s")


if __name__ == "__main__":
    main()
