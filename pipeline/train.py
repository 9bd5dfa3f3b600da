"""Stage train@<variant>-<seed>: CycleGAN training of one variant of params.yaml with one
replicate seed of study.seeds. Stage finetune@<name> (--all-seeds) trains a finetune of
params.yaml for every seed, each from its parent variant's final weights of the same seed.

Writes data/models/<variant>/s<seed>/{G_ab,G_ba,D_a,D_b}.pt, reports/plots/train/<variant>/
s<seed>.csv (one row per epoch), reports/samples/<variant>/s<seed>/epoch_NNN.png (rows: real A,
fake B, rec A, real B, fake A, rec B) and a resumable checkpoint
data/checkpoints/<variant>/s<seed>.pt (persist: true).

Reads data/prepared/train{A,B} and, for every choice made during training (sample grids, the
eval.every_k_epochs curve, staged candidates), val{A,B}; never the test split."""

from __future__ import annotations

import contextlib
import dataclasses
import sys

from cyclelab.stage import add_run_arguments, run_seeds, run_stage

SAMPLE_ROWS = ("real A", "A→B", "A→B→A", "real B", "B→A", "B→A→B")


def add_arguments(parser) -> None:  # noqa: D103
    add_run_arguments(parser)
    parser.add_argument("--all-seeds", action="store_true",
                        help="train every seed of study.seeds in turn (the finetune stage)")


def main(cfg, args) -> None:  # noqa: D103
    cfg.variant(args.variant)  # a one-line error for an unknown name, before any seed
    from cyclelab.training import distributed

    try:
        for seed in run_seeds(cfg, args.seed, args.all_seeds):
            train_seed(cfg, args, seed)
    finally:
        distributed.shutdown()  # once: a torchrun group is not joined twice


def train_seed(cfg, args, seed: int) -> None:
    """Train ``args.variant`` with replicate seed ``seed``."""
    variant, model_cfg, train_cfg = cfg.variant(args.variant)

    from cyclelab.training import distributed

    if train_cfg.gpus > 1 and not distributed.under_torchrun():
        # train.gpus: N processes on this node, one per GPU (or CPU gloo workers).
        distributed.relaunch_under_torchrun(train_cfg.gpus, sys.argv)

    import torch

    from cyclelab import config, paths
    from cyclelab.data.dataset import (
        UnpairedBatches,
        image_files,
        load_folder,
        load_validation,
        to_m11,
        to_uint8,
    )
    from cyclelab.io import atomic_dir, read_json, write_csv, write_json
    from cyclelab.models import build_discriminator, build_generator, count_parameters
    from cyclelab.models.init import INIT_FILE, load_weights
    from cyclelab.models.receptive import field_note, receptive_field
    from cyclelab.report.grids import display_scale, grid, save_png
    from cyclelab.runtime import Runtime, make_runtime, seed_everything
    from cyclelab.tracking import NullRun, stage_run
    from cyclelab.training.cyclegan import CycleGAN
    from cyclelab.training.loop import fit
    from cyclelab.training.schedules import build_schedule
    from cyclelab.training.staged import candidate_scorer, run_stages, stages_of

    seed_everything(seed)
    runtime = make_runtime(cfg.device, train_cfg.precision)
    rank = distributed.init(runtime.device.type)
    if runtime.cuda and rank.world_size > 1:
        runtime = Runtime(torch.device("cuda", rank.local_rank), runtime.precision)
    train_a, train_b = (load_folder(paths.PREPARED / s) for s in ("trainA", "trainB"))
    # Every choice made during training (sample grids, the curve, staged candidates) reads the
    # validation split, never the test split. The grids only show: without a validation split
    # (data.val_fraction: 0) they show training images.
    n = train_cfg.num_samples
    shown = "val" if all(image_files(paths.PREPARED / f"val{d}") for d in "AB") else "train"
    if shown == "train" and rank.is_main:
        print(f"train@{args.variant}-{seed}: no validation split (data.val_fraction: 0): the "
              "sample grids show training images")
    preview_a = to_m11(load_folder(paths.PREPARED / f"{shown}A", limit=n))
    preview_b = to_m11(load_folder(paths.PREPARED / f"{shown}B", limit=n))

    size = train_a.shape[-1]
    G_ab, G_ba = build_generator(model_cfg, size), build_generator(model_cfg, size)
    inputs = [paths.MANIFEST]
    if variant.init == "ae":
        # seeds/000: each generator starts from an autoencoder's generator, copied by
        # init@<variant> as ae.init_from says (models/init.py); every tensor must load.
        for name, net in (("G_ab", G_ab), ("G_ba", G_ba)):
            weights = paths.init_dir(args.variant) / f"{name}.pt"
            load_weights(net, weights, f"init@{args.variant}")
            inputs.append(weights)
    D_a, D_b = build_discriminator(model_cfg), build_discriminator(model_cfg)
    if variant.init not in ("random", "ae"):
        # seeds/002's second phase: fine-tune another variant's final weights (same seed) with
        # this variant's losses, e.g. cycle-only first, then identity added.
        source = paths.model_dir(variant.init, seed)
        for name, net in (("G_ab", G_ab), ("G_ba", G_ba), ("D_a", D_a), ("D_b", D_b)):
            weights = source / f"{name}.pt"
            load_weights(net, weights, f"train@{variant.init}-{seed}")
            inputs.append(weights)

    def build_task(stage: int, task_seed: int) -> CycleGAN:
        nets = (G_ab, G_ba, D_a, D_b) if stage == 0 else (
            build_generator(model_cfg, size), build_generator(model_cfg, size),
            build_discriminator(model_cfg), build_discriminator(model_cfg))
        # Image pools differ per rank; the networks start equal on every rank.
        task = CycleGAN(*nets, train_cfg, runtime, seed=task_seed + 7919 * rank.rank)
        task.sync_grads = distributed.gradient_averager(rank.world_size)
        distributed.broadcast_parameters(task.nets.values())
        current["gan"] = task
        return task

    current: dict = {}
    gan = build_task(0, seed)
    n_params = {"n_params_G": count_parameters(G_ab),
                "n_params_D": count_parameters(gan.nets["D_a"]),
                "receptive_field_D": receptive_field(gan.nets["D_a"])}
    if rank.is_main:
        print(f"train@{args.variant}-{seed}: generator {model_cfg.generator} "
              f"{n_params['n_params_G']:,} parameters, discriminator {model_cfg.discriminator} "
              f"{n_params['n_params_D']:,} parameters, receptive field "
              f"{n_params['receptive_field_D']} px at {size} px")
        if note := field_note(model_cfg, size):
            print(f"train@{args.variant}-{seed}: {note}")

    def build_batches(batch_size: int, batches_seed: int) -> UnpairedBatches:
        return UnpairedBatches(train_a, train_b, batch_size, batches_seed, flip=train_cfg.flip,
                               max_steps=train_cfg.max_steps_per_epoch,
                               load_size=train_cfg.load_size, crop_size=train_cfg.crop_size,
                               rank=rank.rank, world_size=rank.world_size)

    batches = build_batches(train_cfg.batch_size, seed)
    # Keys that do not change the weights stay out, so a run resumes with another world size,
    # checkpoint interval, logging or resume policy.
    weights_cfg = dataclasses.replace(train_cfg, gpus=1, checkpoint_minutes=0.0, log_every=1,
                                      num_samples=1, resume="auto")
    fingerprint = config.fingerprint(seed, model_cfg, weights_cfg, variant.init,
                                     paths.file_digest(*inputs))
    samples_dir = paths.SAMPLES / paths.run_name(args.variant, seed)
    samples_dir.mkdir(parents=True, exist_ok=True)
    scale = display_scale(train_a.shape[-1])
    logged = {"seed": seed, "variant": args.variant, "init": variant.init, "model": model_cfg,
              "train": train_cfg, "data": cfg.data}
    if variant.init == "ae":  # what init@<variant> copied (ae.init_from is its param)
        logged["ae"] = {"init_from": read_json(paths.init_dir(args.variant) / INIT_FILE,
                                               f"dvc repro init@{args.variant}")["init_from"]}
    params = config.flatten(logged) | n_params

    # Only rank 0 of a distributed run logs and writes outputs.
    tracked = (stage_run("train", params, variant=args.variant, seed=seed,
                         description=variant.description) if rank.is_main
               else contextlib.nullcontext(NullRun()))
    with tracked as run:
        run.set_tags({"precision": runtime.precision, "world_size": str(rank.world_size)})
        run.log_metrics({"n_train_a": len(train_a), "n_train_b": len(train_b),
                         "steps_per_epoch": len(batches)})

        def save_sample(epoch: int) -> None:
            if not rank.is_main:
                return
            out = current["gan"].translate(preview_a, preview_b)
            keys = ("real_a", "fake_b", "rec_a", "real_b", "fake_a", "rec_b")
            sample = grid([to_uint8(out[k]) for k in keys], scale=scale, labels=SAMPLE_ROWS)
            save_png(sample, samples_dir / f"epoch_{epoch + 1:03d}.png")
            run.log_image(sample, f"samples/epoch_{epoch + 1:03d}.png")

        curve = None
        if cfg.eval.every_k_epochs:
            from cyclelab.metrics import load_inception
            from cyclelab.metrics.translation import CurveScorer

            limit, purpose = cfg.eval.curve_images, "the eval.every_k_epochs curve"
            curve_a = load_validation(paths.PREPARED, "A", limit, purpose)
            curve_b = load_validation(paths.PREPARED, "B", limit, purpose)
            curve = CurveScorer(load_inception(cfg.eval.fid_weights, cfg.eval.fid_weights_sha256,
                                               runtime.device), curve_a, curve_b, cfg.eval, seed)

        def on_epoch_end(epoch: int, row: dict) -> None:
            save_sample(epoch)
            done = epoch + 1
            if curve is not None and (done % cfg.eval.every_k_epochs == 0
                                      or done == train_cfg.epochs):
                # FID/KID on a fixed validation subset, into the epoch row (CSV plot, MLflow).
                exported = current["gan"].generators()
                row.update(curve(exported["G_ab"], exported["G_ba"], runtime))
            run.log_metrics({f"epoch_{k}": v for k, v in row.items() if k != "epoch"},
                            step=epoch + 1)

        loop_args = dict(checkpoint_path=paths.checkpoint(args.variant, seed),
                         fingerprint=fingerprint, desc=f"train@{args.variant}-{seed}",
                         log_every=train_cfg.log_every,
                         checkpoint_minutes=train_cfg.checkpoint_minutes, is_main=rank.is_main,
                         resume=train_cfg.resume,
                         on_step=lambda step, losses: run.log_metrics(losses, step=step))
        stages, choices = stages_of(train_cfg), []
        if stages:
            # seeds/004 Alg. 1: candidates scored on a fixed validation subset (the report
            # used test images; evaluate scores those, so selecting on them biases the result),
            # the best carried on.
            from cyclelab.metrics import load_inception

            limit, purpose = train_cfg.stage_eval_images, "the staged candidates (train.stage_*)"
            stage_a = load_validation(paths.PREPARED, "A", limit, purpose)
            stage_b = load_validation(paths.PREPARED, "B", limit, purpose)
            score = candidate_scorer(
                load_inception(cfg.eval.fid_weights, cfg.eval.fid_weights_sha256,
                               runtime.device), stage_a, stage_b, runtime,
                train_cfg.stage_select, cfg.eval.batch_size, seed)

            def on_choice(choice: dict) -> None:
                run.log_metrics({f"stage{choice['stage']}_best_epoch": choice["epoch"],
                                 f"stage{choice['stage']}_best_{train_cfg.stage_select}":
                                 choice["score"]})

            def schedule_for(epochs: int):
                return build_schedule(dataclasses.replace(train_cfg, epochs=epochs))

            gan, result, choices = run_stages(
                stages, build_task, build_batches, schedule_for, score, seed=seed,
                on_choice=on_choice, on_epoch_end=on_epoch_end, **loop_args)
            save_sample(sum(s.epochs for s in stages) - 1)  # the last grid shows the chosen weights
        else:
            result = fit(gan, batches, epochs=train_cfg.epochs,
                         schedule=build_schedule(train_cfg), on_epoch_end=on_epoch_end,
                         **loop_args)
        run.set_tags({"resumed_from_epoch": str(result.resumed_from_epoch)})
        if not rank.is_main:
            return
        if not stages and not (samples_dir / f"epoch_{train_cfg.epochs:03d}.png").exists():
            # Resumed a finished run: DVC cleared the old grids, the final one is redrawn.
            save_sample(train_cfg.epochs - 1)
        write_csv(paths.PLOTS / "train" / f"{paths.run_name(args.variant, seed)}.csv",
                  result.history)
        # With train.ema, G_ab.pt/G_ba.pt hold the EMA weights (what evaluate reads) and
        # G_ab_raw.pt/G_ba_raw.pt the raw ones; meta.json says which.
        exported = {**gan.generators(), "D_a": gan.D_a, "D_b": gan.D_b}
        with atomic_dir(paths.model_dir(args.variant, seed)) as out:
            for name, net in exported.items():
                torch.save(net.state_dict(), out / f"{name}.pt")
            write_json(out / "meta.json", {
                "precision": runtime.precision, "device": runtime.device.type,
                "ema": train_cfg.ema,
                "generators": "ema" if train_cfg.ema > 0 else "raw", "init": variant.init,
                "world_size": rank.world_size, "stages": choices})
        for name in ("G_ab", "G_ba"):
            run.log_model(exported[name], name, train_a.shape[-1])


if __name__ == "__main__":
    raise SystemExit(run_stage("train", main, __doc__, add_arguments))
