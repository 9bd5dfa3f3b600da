"""Stage train@<variant>: CycleGAN training of one variant of params.yaml.

Writes data/models/<variant>/{G_ab,G_ba,D_a,D_b}.pt, reports/plots/train_<variant>.csv (one row
per epoch), reports/samples/<variant>/epoch_NNN.png (rows: real A, fake B, rec A, real B,
fake A, rec B) and a resumable checkpoint data/checkpoints/<variant>.pt (persist: true)."""

from __future__ import annotations

import argparse

from cyclelab.stage import run_stage


def add_arguments(parser: argparse.ArgumentParser) -> None:  # noqa: D103
    parser.add_argument("--variant", required=True, help="a name under variants: in params.yaml")


def main(cfg, args) -> None:  # noqa: D103
    variant, model_cfg, train_cfg = cfg.variant(args.variant)

    import torch

    from cyclelab import config, paths
    from cyclelab.data.dataset import UnpairedBatches, load_folder, to_m11, to_uint8
    from cyclelab.io import atomic_dir, write_csv
    from cyclelab.models import build_discriminator, build_generator
    from cyclelab.models.init import load_weights
    from cyclelab.report.grids import display_scale, grid, save_png
    from cyclelab.tracking import stage_run
    from cyclelab.training.cyclegan import CycleGAN
    from cyclelab.training.loop import fit
    from cyclelab.training.runtime import make_runtime, seed_everything
    from cyclelab.training.schedules import build_schedule

    seed_everything(cfg.seed)
    runtime = make_runtime(cfg.device)
    train_a, train_b = (load_folder(paths.PREPARED / s) for s in ("trainA", "trainB"))
    n = train_cfg.num_samples
    preview_a = to_m11(load_folder(paths.PREPARED / "testA", limit=n))
    preview_b = to_m11(load_folder(paths.PREPARED / "testB", limit=n))

    G_ab, G_ba = build_generator(model_cfg), build_generator(model_cfg)
    inputs = [paths.MANIFEST]
    if variant.init == "ae":
        # seeds/000: G_ab starts from the generator of the autoencoder of domain B (it must
        # produce B images), G_ba from that of domain A.
        for net, domain in ((G_ab, "B"), (G_ba, "A")):
            weights = paths.ae_dir(domain) / "generator.pt"
            load_weights(net, weights, f"pretrain_ae@{domain}")
            inputs.append(weights)
    gan = CycleGAN(G_ab, G_ba, build_discriminator(model_cfg), build_discriminator(model_cfg),
                   train_cfg, runtime, seed=cfg.seed)
    batches = UnpairedBatches(train_a, train_b, train_cfg.batch_size, cfg.seed,
                              flip=train_cfg.flip, max_steps=train_cfg.max_steps_per_epoch)
    fingerprint = config.fingerprint(cfg.seed, model_cfg, train_cfg, variant.init,
                                     paths.file_digest(*inputs))
    samples_dir = paths.SAMPLES / args.variant
    samples_dir.mkdir(parents=True, exist_ok=True)
    scale = display_scale(train_a.shape[-1])
    params = config.flatten({"seed": cfg.seed, "variant": args.variant, "init": variant.init,
                             "model": model_cfg, "train": train_cfg, "data": cfg.data})

    with stage_run("train", params, variant=args.variant, description=variant.description) as run:
        run.log_metrics({"n_train_a": len(train_a), "n_train_b": len(train_b),
                         "steps_per_epoch": len(batches)})

        def save_sample(epoch: int) -> None:
            out = gan.translate(preview_a, preview_b)
            keys = ("real_a", "fake_b", "rec_a", "real_b", "fake_a", "rec_b")
            sample = grid([to_uint8(out[k]) for k in keys], scale=scale)
            save_png(sample, samples_dir / f"epoch_{epoch + 1:03d}.png")
            run.log_image(sample, f"samples/epoch_{epoch + 1:03d}.png")

        def on_epoch_end(epoch: int, row: dict) -> None:
            save_sample(epoch)
            run.log_metrics({f"epoch_{k}": v for k, v in row.items() if k != "epoch"},
                            step=epoch + 1)

        result = fit(gan, batches, epochs=train_cfg.epochs, schedule=build_schedule(train_cfg),
                     checkpoint_path=paths.CHECKPOINTS / f"{args.variant}.pt",
                     fingerprint=fingerprint, desc=f"train@{args.variant}",
                     log_every=train_cfg.log_every,
                     on_step=lambda step, losses: run.log_metrics(losses, step=step),
                     on_epoch_end=on_epoch_end)
        run.set_tags({"resumed_from_epoch": str(result.resumed_from_epoch)})
        if not (samples_dir / f"epoch_{train_cfg.epochs:03d}.png").exists():
            # Resumed a finished run: DVC cleared the old grids, the final one is redrawn.
            save_sample(train_cfg.epochs - 1)
        write_csv(paths.PLOTS / f"train_{args.variant}.csv", result.history)
        with atomic_dir(paths.model_dir(args.variant)) as out:
            for name, net in gan.nets.items():
                torch.save(net.state_dict(), out / f"{name}.pt")
        for name in ("G_ab", "G_ba"):
            run.log_model(gan.nets[name], name, train_a.shape[-1])


if __name__ == "__main__":
    raise SystemExit(run_stage("train", main, __doc__, add_arguments))
