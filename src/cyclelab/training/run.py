"""One training run of a variant and replicate seed: what stage ``train@<variant>-<seed>`` (and
``finetune@<name>``, per seed) does between reading params and exiting.

:class:`TrainingRun` builds the networks (from scratch, from the autoencoders that
``init@<variant>`` copied, or from a parent variant's final weights), the batches and the
checkpoint fingerprint; :meth:`TrainingRun.train` trains, plainly or in stages (seeds/004), with
the per-epoch sample grids and the ``eval.every_k_epochs`` curve on the validation split, and
writes the weights, the epoch history and ``meta.json``. Only rank 0 of a distributed run logs
and writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from typing import Any

import torch

from cyclelab import config, paths
from cyclelab.config import Config
from cyclelab.data.dataset import (
    UnpairedBatches,
    load_folder,
    load_validation,
    preview_images,
    to_m11,
    to_uint8,
)
from cyclelab.directions import GENERATORS, GRID_ROWS
from cyclelab.io import atomic_dir, read_json, sha256_file, write_csv, write_json
from cyclelab.models.build import build_discriminator, build_generator, count_parameters
from cyclelab.models.init import INIT_FILE, load_weights
from cyclelab.models.receptive import field_note, receptive_field
from cyclelab.report.grids import display_scale, grid, save_png
from cyclelab.runtime import Runtime, make_runtime, seed_everything
from cyclelab.tracking import NullRun, RunLog, stage_run
from cyclelab.training import checkpoint, distributed
from cyclelab.training.cyclegan import CycleGAN
from cyclelab.training.loop import FitResult, fit
from cyclelab.training.schedules import build_schedule
from cyclelab.training.staged import (
    candidate_scorer,
    run_stages,
    selection_metric,
    stages_of,
)

SAMPLE_KEYS = ("real_a", "fake_b", "rec_a", "real_b", "fake_a", "rec_b")
# A different image pool on every rank; the networks start equal on every rank.
RANK_SEED_STRIDE = 7919


class TrainingRun:
    """Variant ``name`` of ``cfg`` trained with replicate seed ``seed``."""

    def __init__(self, cfg: Config, name: str, seed: int) -> None:
        self.cfg, self.name, self.seed = cfg, name, seed
        self.variant, self.model_cfg, self.train_cfg = cfg.variant(name)
        self.desc = f"train@{name}-{seed}"
        seed_everything(seed)
        runtime = make_runtime(cfg.device, self.train_cfg.precision)
        self.rank = distributed.init(runtime.device.type)
        if runtime.cuda and self.rank.world_size > 1:
            runtime = Runtime(torch.device("cuda", self.rank.local_rank), runtime.precision)
        self.runtime = runtime
        self.train_a, self.train_b = (load_folder(paths.PREPARED / s)
                                      for s in ("trainA", "trainB"))
        self.size = self.train_a.shape[-1]
        self.preview_a, self.preview_b = self._previews()
        self.inputs = [paths.MANIFEST]  # files the weights depend on (the fingerprint)
        self.start_nets = self._start_networks()
        self.gan = self.build_task(0, seed)
        self.samples_dir = paths.SAMPLES / paths.run_name(name, seed)
        self.run: Any = NullRun()
        self.curve = None

    # ------------------------------------------------------------------ set-up

    def say(self, text: str) -> None:
        """One line on rank 0."""
        if self.rank.is_main:
            print(f"{self.desc}: {text}")

    def _previews(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The sample grids' images: validation ones (training images without a split)."""
        shown = [preview_images(paths.PREPARED, d, self.train_cfg.num_samples) for d in "AB"]
        if any(split == "train" for _, split in shown):
            self.say("no validation split (data.val_fraction: 0): the sample grids show "
                     "training images")
        return tuple(to_m11(images) for images, _ in shown)

    def _start_networks(self) -> tuple[torch.nn.Module, ...]:
        """G_ab, G_ba, D_a, D_b as the variant starts: fresh, from the autoencoders
        (``init: ae``, copied by init@<variant>), or a parent's final weights (a finetune)."""
        model_cfg, init = self.model_cfg, self.variant.init
        nets = {"G_ab": build_generator(model_cfg, self.size),
                "G_ba": build_generator(model_cfg, self.size),
                "D_a": build_discriminator(model_cfg), "D_b": build_discriminator(model_cfg)}
        if init == "ae":
            # seeds/000: each generator starts from an autoencoder's generator; every tensor
            # must load.
            sources = {g: (paths.init_dir(self.name), f"init@{self.name}")
                       for g in GENERATORS}
        elif init != "random":
            # seeds/002's second phase: another variant's final weights, same seed.
            sources = {n: (paths.model_dir(init, self.seed), f"train@{init}-{self.seed}")
                       for n in nets}
        else:
            sources = {}
        for net_name, (folder, producer) in sources.items():
            load_weights(nets[net_name], folder / f"{net_name}.pt", producer)
            self.inputs.append(folder / f"{net_name}.pt")
        return tuple(nets.values())

    def build_task(self, stage: int, task_seed: int) -> CycleGAN:
        """The CycleGAN of stage ``stage``: the start networks for stage 0, fresh ones after."""
        nets = self.start_nets if stage == 0 else (
            build_generator(self.model_cfg, self.size), build_generator(self.model_cfg, self.size),
            build_discriminator(self.model_cfg), build_discriminator(self.model_cfg))
        task = CycleGAN(*nets, self.train_cfg, self.runtime,
                        seed=task_seed + RANK_SEED_STRIDE * self.rank.rank)
        if stage == 0 and self.train_cfg.restart_optimizers == "parent":
            self._parent_optimizers(task)
        task.sync_grads = distributed.gradient_averager(self.rank.world_size)
        distributed.broadcast_parameters(task.nets.values())
        self.gan = task
        return task

    def _parent_optimizers(self, task: CycleGAN) -> None:
        """``train.restart_optimizers: parent``: the parent's final Adam/SGD state for G and D;
        the learning rate and its schedule stay this run's (the parent's decayed to 0 by its
        end). The checkpoint stays out of the fingerprint: it must hold the very discriminators
        of the parent's weights, which are in it (``self.inputs``)."""
        parent = self.variant.init
        producer = (f"finetune@{parent}" if parent in self.cfg.finetunes
                    else f"train@{parent}-{self.seed}")
        checkpoint.restart_optimizers(
            paths.checkpoint(parent, self.seed), task.optimizers,
            {n: task.nets[n] for n in ("D_a", "D_b")},
            weights=paths.model_dir(parent, self.seed), producer=producer)
        self.say(f"optimisers restarted from {paths.checkpoint(parent, self.seed)} "
                 f"(train.restart_optimizers parent), learning rate {self.train_cfg.lr:g}")

    def build_batches(self, batch_size: int, batches_seed: int) -> UnpairedBatches:
        """This rank's unpaired batches of one stage (augmentation as ``train.*`` says)."""
        cfg = self.train_cfg
        return UnpairedBatches(self.train_a, self.train_b, batch_size, batches_seed,
                               flip=cfg.flip, max_steps=cfg.max_steps_per_epoch,
                               load_size=cfg.load_size, crop_size=cfg.crop_size,
                               rank=self.rank.rank, world_size=self.rank.world_size)

    def fingerprint(self) -> str:
        """What the weights depend on; keys that do not change them stay out, so a run resumes
        with another world size, checkpoint interval, logging, resume or keep policy."""
        weights_cfg = config.without_added_later(dataclasses.replace(
            self.train_cfg, gpus=1, checkpoint_minutes=0.0, log_every=1, num_samples=1,
            resume="auto"))
        # Dropped rather than normalised: checkpoints made before the key existed still resume.
        del weights_cfg["keep_every"]
        return config.fingerprint(self.seed, config.without_added_later(self.model_cfg),
                                  weights_cfg, self.variant.init,
                                  sha256_file(*self.inputs, missing_ok=True)[:16])

    def network_facts(self) -> dict[str, int]:
        """Parameter counts and the discriminator's receptive field (logged, printed)."""
        return {"n_params_G": count_parameters(self.gan.nets["G_ab"]),
                "n_params_D": count_parameters(self.gan.nets["D_a"]),
                "receptive_field_D": receptive_field(self.gan.nets["D_a"])}

    def params(self, facts: dict[str, int]) -> dict[str, Any]:
        """The MLflow params of the run."""
        logged = {"seed": self.seed, "variant": self.name, "init": self.variant.init,
                  "model": self.model_cfg, "train": self.train_cfg, "data": self.cfg.data}
        if self.variant.init == "ae":  # what init@<variant> copied (ae.init_from is its param)
            record = read_json(paths.init_dir(self.name) / INIT_FILE, f"dvc repro init@{self.name}")
            logged["ae"] = {"init_from": record["init_from"]}
        return config.flatten(logged) | facts

    # ------------------------------------------------------------------ callbacks

    def save_sample(self, epoch: int) -> None:
        """The sample grid after ``epoch`` (0-based), on disk and in MLflow."""
        if not self.rank.is_main:
            return
        out = self.gan.translate(self.preview_a, self.preview_b)
        sample = grid([to_uint8(out[k]) for k in SAMPLE_KEYS], scale=display_scale(self.size),
                      labels=GRID_ROWS)
        save_png(sample, self.samples_dir / f"epoch_{epoch + 1:03d}.png")
        self.run.log_image(sample, f"samples/epoch_{epoch + 1:03d}.png")

    def on_epoch_end(self, epoch: int, row: dict) -> None:
        """Sample grid, the curve's FID/KID on the validation subset (into ``row``), MLflow."""
        self.save_sample(epoch)
        done, every = epoch + 1, self.cfg.eval.every_k_epochs
        if self.curve is not None and (done % every == 0 or done == self.train_cfg.epochs):
            exported = self.gan.generators()
            row.update(self.curve(exported["G_ab"], exported["G_ba"], self.runtime))
        keep = self.train_cfg.keep_every
        if keep and done % keep == 0 and self.rank.is_main:
            self._keep(done)
        self.run.log_metrics({f"epoch_{k}": v for k, v in row.items() if k != "epoch"},
                             step=done)

    def _keep(self, done: int) -> None:
        """train.keep_every: the generators after epoch ``done`` (1-based), staged until
        :meth:`_write` moves them into the run's model folder."""
        with atomic_dir(self.kept / f"epoch_{done:03d}") as out:
            for net_name, net in self.gan.generators().items():
                torch.save(net.state_dict(), out / f"{net_name}.pt")

    def on_choice(self, choice: dict) -> None:
        """A staged run chose its best candidate of one stage."""
        select = selection_metric(self.train_cfg.stage_select, self.cfg.eval.is_weights)
        self.run.log_metrics({f"stage{choice['stage']}_best_epoch": choice["epoch"],
                              f"stage{choice['stage']}_best_{select}": choice["score"]})

    def _validation_scorer(self, limit: int, purpose: str, metrics: list[str] | None = None):
        """The :class:`~cyclelab.metrics.translation.CurveScorer` of the first ``limit``
        validation images of each domain (``purpose`` names who needs them in a DataError)."""
        from cyclelab.metrics import load_inception
        from cyclelab.metrics.translation import CurveScorer

        val_a, val_b = (load_validation(paths.PREPARED, d, limit, purpose) for d in "AB")
        inception = load_inception(self.cfg.eval.fid_weights, self.cfg.eval.fid_weights_sha256,
                                   self.runtime.device)
        is_net = None
        if {"is", "gms"} & set(metrics or ()):
            from cyclelab.metrics.inception_score import load_is_network

            is_net = load_is_network(self.cfg.eval.is_weights, self.cfg.eval.is_weights_sha256,
                                     self.runtime.device)
        return CurveScorer(inception, val_a, val_b, self.cfg.eval, self.seed, metrics, is_net)

    # ------------------------------------------------------------------ the run

    def train(self) -> None:
        """Train, then (rank 0) write the weights, history, meta.json and the MLflow models."""
        facts = self.network_facts()
        self.say(f"generator {self.model_cfg.generator} {facts['n_params_G']:,} parameters, "
                 f"discriminator {self.model_cfg.discriminator} {facts['n_params_D']:,} "
                 f"parameters, receptive field {facts['receptive_field_D']} px at {self.size} px")
        if note := field_note(self.model_cfg, self.size):
            self.say(note)
        batches = self.build_batches(self.train_cfg.batch_size, self.seed)
        fingerprint = self.fingerprint()
        self.kept = paths.kept_staging(self.name, self.seed, fingerprint)
        if self.rank.is_main:  # kept generators of runs with other params are stale
            for old in paths.kept_stagings(self.name, self.seed):
                if old != self.kept:
                    shutil.rmtree(old, ignore_errors=True)
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        tracked = (stage_run("train", self.params(facts), variant=self.name, seed=self.seed,
                             description=self.variant.description) if self.rank.is_main
                   else contextlib.nullcontext(NullRun()))
        with tracked as run:
            self.run = run
            run.set_tags({"precision": self.runtime.precision,
                          "world_size": str(self.rank.world_size)})
            run.log_metrics({"n_train_a": len(self.train_a), "n_train_b": len(self.train_b),
                             "steps_per_epoch": len(batches)})
            if self.cfg.eval.every_k_epochs:
                self.curve = self._validation_scorer(self.cfg.eval.curve_images,
                                                     "the eval.every_k_epochs curve")
            result, choices = self._fit(batches, fingerprint)
            run.set_tags({"resumed_from_epoch": str(result.resumed_from_epoch)})
            if self.rank.is_main:
                self._write(result, choices)

    def _fit(self, batches: UnpairedBatches, fingerprint: str) -> tuple[FitResult, list]:
        train_cfg = self.train_cfg
        loop_args = dict(checkpoint_path=paths.checkpoint(self.name, self.seed),
                         fingerprint=fingerprint, desc=self.desc, log_every=train_cfg.log_every,
                         checkpoint_minutes=train_cfg.checkpoint_minutes,
                         is_main=self.rank.is_main, resume=train_cfg.resume,
                         on_step=RunLog(self.run).on_step)
        stages = stages_of(train_cfg)
        if not stages:
            result = fit(self.gan, batches, epochs=train_cfg.epochs,
                         schedule=build_schedule(train_cfg), on_epoch_end=self.on_epoch_end,
                         **loop_args)
            if not (self.samples_dir / f"epoch_{train_cfg.epochs:03d}.png").exists():
                # Resumed a finished run: DVC cleared the old grids, the final one is redrawn.
                self.save_sample(train_cfg.epochs - 1)
            return result, []
        # seeds/004 Alg. 1: candidates scored on a fixed validation subset (the report used
        # test images; evaluate scores those, so selecting on them biases the result), the
        # best carried on.
        scorer = self._validation_scorer(train_cfg.stage_eval_images,
                                         "the staged candidates (train.stage_*)",
                                         [select := selection_metric(train_cfg.stage_select,
                                                                     self.cfg.eval.is_weights)])
        self.say(f"staged candidates selected by {select} (train.stage_select "
                 f"{train_cfg.stage_select})")
        score = candidate_scorer(scorer, self.runtime, select)
        self.gan, result, choices = run_stages(
            stages, self.build_task, self.build_batches, self._schedule_for, score,
            seed=self.seed, on_choice=self.on_choice, on_epoch_end=self.on_epoch_end,
            **loop_args)
        self.save_sample(sum(s.epochs for s in stages) - 1)  # the grid of the chosen weights
        return result, choices

    def _schedule_for(self, epochs: int):
        return build_schedule(dataclasses.replace(self.train_cfg, epochs=epochs))

    def _write(self, result: FitResult, choices: list) -> None:
        """Epoch history, the weights (with train.ema, G_ab.pt/G_ba.pt hold the EMA ones, what
        evaluate reads, and G_ab_raw.pt/G_ba_raw.pt the raw ones), meta.json, MLflow models."""
        write_csv(paths.PLOTS / "train" / f"{paths.run_name(self.name, self.seed)}.csv",
                  result.history)
        exported = {**self.gan.generators(), "D_a": self.gan.D_a, "D_b": self.gan.D_b}
        total = sum(s.epochs for s in stages_of(self.train_cfg)) or self.train_cfg.epochs
        keep = self.train_cfg.keep_every  # a resumed run may have kept more often before
        staged = {int(d.name.removeprefix("epoch_")): d for d in self.kept.glob("epoch_*")
                  if d.is_dir()} if keep else {}
        kept = {epoch: d for epoch, d in sorted(staged.items())
                if epoch <= total and epoch % keep == 0}
        with atomic_dir(paths.model_dir(self.name, self.seed)) as out:
            for net_name, net in exported.items():
                torch.save(net.state_dict(), out / f"{net_name}.pt")
            for folder in kept.values():
                shutil.copytree(folder, out / paths.KEPT / folder.name)
            write_json(out / "meta.json", {
                "precision": self.runtime.precision, "device": self.runtime.device.type,
                "ema": self.train_cfg.ema,
                "generators": "ema" if self.train_cfg.ema > 0 else "raw",
                "init": self.variant.init, "world_size": self.rank.world_size,
                "stages": choices, "kept_epochs": list(kept)})
        for net_name in GENERATORS:
            self.run.log_model(exported[net_name], net_name, self.size)


def train_seed(cfg: Config, name: str, seed: int) -> None:
    """Train variant (or finetune) ``name`` with replicate seed ``seed``."""
    TrainingRun(cfg, name, seed).train()
