"""What stage ``pretrain_ae@<domain>`` does: the autoencoder ``ae.kind`` on one domain's
training images, augmented as the CycleGAN trains (``train.flip``, ``train.load_size``,
``train.crop_size``) and at its ``train.precision``; its sample grid shows validation images
(training ones without a validation split), never the test split."""

from __future__ import annotations

import torch

from cyclelab import config, paths
from cyclelab.config import Config
from cyclelab.data.dataset import SingleBatches, load_folder, preview_images, to_uint8
from cyclelab.io import atomic_dir, sha256_file, write_csv
from cyclelab.models.autoencoder import build_autoencoder
from cyclelab.models.build import build_generator, count_parameters
from cyclelab.report.grids import display_scale, grid, save_png
from cyclelab.runtime import make_runtime, seed_everything
from cyclelab.tracking import RunLog, stage_run
from cyclelab.training.autoencoder import AutoencoderTask
from cyclelab.training.loop import fit
from cyclelab.training.schedules import constant


def pretrain_domain(cfg: Config, domain: str) -> dict[str, int]:
    """Train the autoencoder of ``domain``; write data/ae/<domain>/{autoencoder,generator}.pt,
    reports/plots/ae_<domain>.csv and reports/samples/ae_<domain>.png. Returns its parameter
    counts."""
    seed_everything(cfg.seed)
    runtime = make_runtime(cfg.device, cfg.train.precision)  # the CycleGAN's precision policy
    images = load_folder(paths.PREPARED / f"train{domain}")
    # The augmentation the CycleGAN trains with: a flip learnt here would be one the CycleGAN
    # must not make (digits), and the networks see crops of train.crop_size.
    augmentation = {"flip": cfg.train.flip, "load_size": cfg.train.load_size,
                    "crop_size": cfg.train.crop_size}
    batches = SingleBatches(images, cfg.ae.batch_size, cfg.seed, **augmentation)
    preview = batches.center(preview_images(paths.PREPARED, domain, cfg.train.num_samples)[0])
    # The generator gets model.init (as in CycleGAN) and is built for the prepared size, as
    # train builds the one it initialises; encoder and decoder keep torch's default init, which
    # suits their GELU/batch-norm stack, and are built for the size they train on.
    size = images.shape[-1]
    ae = build_autoencoder(cfg.ae, build_generator(cfg.model, size),
                           config.training_size(cfg.data, cfg.train)[0])
    task = AutoencoderTask(ae, cfg.ae, runtime, steps_per_epoch=len(batches))
    n_params = {"n_params_AE": count_parameters(ae), "n_params_G": count_parameters(ae.generator)}
    print(f"pretrain_ae@{domain}: {cfg.ae.kind} autoencoder, {n_params['n_params_AE']:,} "
          f"parameters ({n_params['n_params_G']:,} in the generator)")
    fingerprint = config.fingerprint(cfg.seed, config.without_added_later(cfg.model), cfg.ae,
                                     augmentation, cfg.train.precision, domain,
                                     sha256_file(paths.MANIFEST, missing_ok=True)[:16])
    params = config.flatten({"seed": cfg.seed, "model": cfg.model, "ae": cfg.ae, "data": cfg.data,
                             "train": {**augmentation, "precision": cfg.train.precision}})
    with stage_run("pretrain_ae", params | n_params, domain=domain,
                   description=f"autoencoder pretraining on domain {domain}") as run:
        run.set_tags({"precision": runtime.precision})
        run.log_metrics({"n_images": len(images)})
        log = RunLog(run)
        result = fit(task, batches, epochs=cfg.ae.epochs, schedule=constant(cfg.ae),
                     checkpoint_path=paths.CHECKPOINTS / f"ae_{domain}.pt",
                     fingerprint=fingerprint, desc=f"pretrain_ae@{domain}",
                     log_every=cfg.train.log_every, resume=cfg.train.resume,
                     on_step=log.on_step, on_epoch_end=log.on_epoch_end)
        with torch.no_grad():
            sample = grid([to_uint8(preview), to_uint8(task.reconstruct(preview))],
                          scale=display_scale(size))
        save_png(sample, paths.SAMPLES / f"ae_{domain}.png")
        run.log_image(sample, f"samples/ae_{domain}.png")
        write_csv(paths.PLOTS / f"ae_{domain}.csv", result.history)
        with atomic_dir(paths.ae_dir(domain)) as out:
            torch.save(task.ae.state_dict(), out / "autoencoder.pt")
            torch.save(task.ae.generator.state_dict(), out / "generator.pt")
        run.log_metrics({"final_loss_mse": result.history[-1]["loss_mse"]})
        run.log_model(task.ae.generator, f"generator_{domain}", size)
    return n_params
