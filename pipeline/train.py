"""Stage train@<variant>-<seed>: CycleGAN training of one variant of params.yaml with one
replicate seed of study.seeds. Stage finetune@<name> (--all-seeds) trains a finetune of
params.yaml for every seed, each from its parent variant's final weights of the same seed.

Writes data/models/<variant>/s<seed>/{G_ab,G_ba,D_a,D_b}.pt, reports/plots/train/<variant>/
s<seed>.csv (one row per epoch), reports/samples/<variant>/s<seed>/epoch_NNN.png (rows: real A,
fake B, rec A, real B, fake A, rec B) and a resumable checkpoint
data/checkpoints/<variant>/s<seed>.pt (persist: true).

Reads data/prepared/train{A,B} and, for every choice made during training (sample grids, the
eval.every_k_epochs curve, staged candidates), val{A,B}; never the test split. The run itself
is cyclelab.training.run.TrainingRun."""

from __future__ import annotations

import sys

from cyclelab.stage import add_run_arguments, run_seeds, run_stage


def add_arguments(parser) -> None:  # noqa: D103
    add_run_arguments(parser)
    parser.add_argument("--all-seeds", action="store_true",
                        help="train every seed of study.seeds in turn (the finetune stage)")


def main(cfg, args) -> None:  # noqa: D103
    train_cfg = cfg.variant(args.variant)[2]  # a one-line error for an unknown name first
    from cyclelab.training import distributed

    if train_cfg.gpus > 1 and not distributed.under_torchrun():
        # train.gpus: N processes on this node, one per GPU (or CPU gloo workers).
        distributed.relaunch_under_torchrun(train_cfg.gpus, sys.argv)
    from cyclelab.training.run import train_seed

    try:
        for seed in run_seeds(cfg, args.seed, args.all_seeds):
            train_seed(cfg, args.variant, seed)
    finally:
        distributed.shutdown()  # once: a torchrun group is not joined twice


if __name__ == "__main__":
    raise SystemExit(run_stage("train", main, __doc__, add_arguments))
