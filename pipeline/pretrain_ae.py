"""Stage pretrain_ae@<domain>: the autoencoder ``ae.kind`` (seed 000's, or the ``ae``, ``vae``,
``inpaint`` options) on one domain's training images, augmented as the CycleGAN trains
(``train.flip``, ``train.load_size``, ``train.crop_size``) and at its ``train.precision``.

Writes data/ae/<domain>/{autoencoder.pt,generator.pt}, reports/plots/ae_<domain>.csv (one row
per epoch; the VAE's ``kl`` among its columns) and reports/samples/ae_<domain>.png (top:
validation images, bottom: their reconstructions). The work is
cyclelab.training.pretrain.pretrain_domain."""

from __future__ import annotations

import argparse

from cyclelab.stage import run_stage


def add_arguments(parser: argparse.ArgumentParser) -> None:  # noqa: D103
    parser.add_argument("--domain", required=True, choices=("A", "B"))


def main(cfg, args) -> None:  # noqa: D103
    from cyclelab.training.pretrain import pretrain_domain

    pretrain_domain(cfg, args.domain)


if __name__ == "__main__":
    raise SystemExit(run_stage("pretrain_ae", main, __doc__, add_arguments))
