"""The CycleGAN task: two generators, two discriminators, one step in the paper's order."""

from __future__ import annotations

import copy
from typing import Any

import torch

from cyclelab.losses import (
    GAN_LOSSES,
    GeneratorView,
    active_aux_losses,
    cycle_loss,
    gradient_penalty,
    identity_loss,
    identity_weight,
)
from cyclelab.runtime import Runtime
from cyclelab.training.diffaugment import DiffAugment
from cyclelab.training.pool import build_pool

# Networks that treat each image of a batch on its own and draw no random numbers: for them one
# pass over two batches concatenated is two passes (up to float rounding), so independent
# passes can share one call, which runs faster on small images (bench/RESULTS.md).
PER_SAMPLE_NETS = ("ResnetGenerator", "PatchDiscriminator", "PixelDiscriminator")
# On the CPU shared calls pay only while they stay small: there (2 threads, resnet_9blocks,
# batch 1) the step with shared calls is 1.04x as fast as one pass per call at 128 px, but
# 0.87x at 256 px (bench/RESULTS.md), so calls over this many pixels are not shared. On CUDA
# a larger call only fills the GPU better.
CPU_SHARED_CALL_PIXELS = 3 * 128 * 128


def per_sample(net: torch.nn.Module) -> bool:
    """Whether ``net`` is one of :data:`PER_SAMPLE_NETS` without batch norm or dropout."""
    cross_sample = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.modules.dropout._DropoutNd)
    return type(net).__name__ in PER_SAMPLE_NETS and not any(
        isinstance(m, cross_sample) for m in net.modules())


def set_requires_grad(nets: list[torch.nn.Module], flag: bool) -> None:
    """Freeze or unfreeze ``nets`` (D is frozen while G is updated)."""
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * net`` for parameters; buffers are copied."""
    for e, p in zip(ema.parameters(), net.parameters(), strict=True):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), net.buffers(), strict=True):
        e.copy_(b)


def optimizer(kind: str, params, lr: float, train_cfg, device: torch.device):
    """``train.optimizer_g`` / ``optimizer_d``: Adam with ``beta1``/``beta2`` (fused: the same
    update in one pass over each tensor, 5x faster than the per-tensor loop on the CPU, a sixth
    of a 32 px step there; bench/RESULTS.md), or SGD with ``train.momentum``."""
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=train_cfg.momentum)
    return torch.optim.Adam(params, lr=lr, betas=(train_cfg.beta1, train_cfg.beta2),
                            fused=device.type in ("cpu", "cuda"))


class CycleGAN:
    """``G_ab: A -> B``, ``G_ba: B -> A``, ``D_a`` judges A, ``D_b`` judges B."""

    def __init__(self, G_ab, G_ba, D_a, D_b, train_cfg, runtime: Runtime, seed: int = 0) -> None:
        self.cfg, self.runtime = train_cfg, runtime
        self.G_ab, self.G_ba = runtime.prepare(G_ab), runtime.prepare(G_ba)
        self.D_a, self.D_b = runtime.prepare(D_a), runtime.prepare(D_b)
        self.nets = {"G_ab": self.G_ab, "G_ba": self.G_ba, "D_a": self.D_a, "D_b": self.D_b}
        if train_cfg.ema > 0:
            # EMA copies of the generators (not optimised; saved and resumed with the nets).
            self.G_ab_ema, self.G_ba_ema = copy.deepcopy(self.G_ab), copy.deepcopy(self.G_ba)
            set_requires_grad([self.G_ab_ema, self.G_ba_ema], False)
            self.nets.update(G_ab_ema=self.G_ab_ema, G_ba_ema=self.G_ba_ema)
        self.optimizers = {
            "G": optimizer(train_cfg.optimizer_g, [*self.G_ab.parameters(),
                                                   *self.G_ba.parameters()],
                           train_cfg.lr, train_cfg, runtime.device),
            "D": optimizer(train_cfg.optimizer_d, [*self.D_a.parameters(),
                                                   *self.D_b.parameters()],
                           train_cfg.lr_d, train_cfg, runtime.device),
        }
        self.gan = GAN_LOSSES[train_cfg.gan_loss]
        self.lambda_idt = identity_weight(train_cfg.lambda_cycle, train_cfg.lambda_identity,
                                          train_cfg.identity_weight)
        self.pool_a = build_pool(train_cfg, seed=seed + 1)
        self.pool_b = build_pool(train_cfg, seed=seed + 2)
        # train.diffaugment: the same transforms on real and fake before every D call.
        self.augment = DiffAugment(train_cfg.diffaugment, seed=seed + 3)
        self.scaler = runtime.grad_scaler()
        # Set by a distributed run: averages gradients over ranks before each optimiser step.
        self.sync_grads = None

    def judge(self, D: torch.nn.Module, images: torch.Tensor) -> Any:
        """D's prediction as the GAN loss reads it: patch logits, or both heads (relativistic)."""
        return D.forward_all(images) if self.gan.needs_global else D(images)

    @staticmethod
    def _patch(pred: Any) -> torch.Tensor:
        return pred["patch"] if isinstance(pred, dict) else pred

    def _features(self, D: torch.nn.Module, pred: Any, images: torch.Tensor) -> list:
        return pred["features"] if isinstance(pred, dict) else D.features(images)

    def _generator_terms(self, D, real_target, real_source, fake) -> dict[str, torch.Tensor]:
        """Adversarial and auxiliary terms of one generator (``fake`` in D's domain): ``gan``
        and one entry per auxiliary loss switched on (``losses.AUX_LOSSES``)."""
        aux = active_aux_losses(self.cfg)
        needs_real = self.gan.needs_real_for_generator or any(a.needs_features for a, _ in aux)
        # D judges augmented images (train.diffaugment); the consistency terms read G's own.
        seen_fake, seen_real = (self.augment(fake, real_target) if needs_real
                                else (*self.augment(fake), None))
        pred_fake = self.judge(D, seen_fake)
        pred_real = self.judge(D, seen_real) if needs_real else None
        terms = {"gan": self.gan.generator(pred_fake, pred_real)}
        view = GeneratorView(
            source=real_source, fake=fake,
            features_fake=lambda: self._features(D, pred_fake, seen_fake),
            features_real=lambda: self._features(D, pred_real, seen_real))
        for loss, _ in aux:
            terms[loss.name] = loss.compute(view)
        return terms

    def _can_share_call(self, net: torch.nn.Module, *batches: torch.Tensor) -> bool:
        """Whether ``batches`` may go through ``net`` in one call (see :data:`PER_SAMPLE_NETS`)."""
        pixels = sum(b.shape[0] * b.shape[-2] * b.shape[-1] for b in batches)
        return per_sample(net) and (self.runtime.cuda or pixels <= CPU_SHARED_CALL_PIXELS)

    def _discriminator_terms(self, D, real, fake) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        real, fake = self.augment(real, fake)
        if self._can_share_call(D, real, fake) and not self.gan.needs_global:
            pred_real, pred_fake = D(torch.cat([real, fake])).split([len(real), len(fake)])
        else:
            pred_real, pred_fake = self.judge(D, real), self.judge(D, fake)
        loss = self.gan.discriminator(pred_real, pred_fake)
        gp = torch.zeros((), device=real.device)
        if self.cfg.lambda_gp > 0:
            # Seeds/001 v2, seeds/004: (||grad D(x_hat)|| - 1)^2 between real and fake images.
            n = min(len(real), len(fake))
            gp = gradient_penalty(D, real[:n], fake[:n])
        return loss, gp, (pred_real, pred_fake)

    def _optimise(self, name: str, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()
        if self.sync_grads is not None:
            self.sync_grads(self.optimizers[name])
        self.scaler.step(self.optimizers[name])

    def step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        """One CycleGAN update (Zhu et al. 2017, Alg. of the official code)."""
        real_a, real_b = (self.runtime.tensor(t) for t in batch)
        cfg = self.cfg
        zero = torch.zeros((), device=real_a.device)

        # 1. Generators, with both discriminators frozen.
        set_requires_grad([self.D_a, self.D_b], False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        with self.runtime.autocast():
            idt_a = idt_b = None
            if (self.lambda_idt > 0 and self._can_share_call(self.G_ab, real_a, real_b)
                    and self._can_share_call(self.G_ba, real_b, real_a, real_a)):
                # The six passes in three calls: what G_ab can translate at once, then all of
                # G_ba's inputs (fake_b included), then rec_b, the one pass left.
                n_a, n_b = len(real_a), len(real_b)
                fake_b, idt_b = self.G_ab(torch.cat([real_a, real_b])).split([n_a, n_b])
                fake_a, idt_a, rec_a = self.G_ba(torch.cat([real_b, real_a, fake_b])).split(
                    [n_b, n_a, n_a])
                rec_b = self.G_ab(fake_a)
            else:
                fake_b = self.G_ab(real_a)
                rec_a = self.G_ba(fake_b)
                fake_a = self.G_ba(real_b)
                rec_b = self.G_ab(fake_a)
            # Adversarial: D_b should call G_ab's output real (eq. 1), and D_a likewise; plus
            # the extras of seeds/004 (feature matching, edge and colour consistency).
            terms_ab = self._generator_terms(self.D_b, real_b, real_a, fake_b)
            terms_ba = self._generator_terms(self.D_a, real_a, real_b, fake_a)
            # Cycle consistency ||G_ba(G_ab(a)) - a||_1 + ||G_ab(G_ba(b)) - b||_1 (eq. 2).
            loss_cycle_a = cycle_loss(real_a, rec_a)
            loss_cycle_b = cycle_loss(real_b, rec_b)
            # Identity ||G_ab(b) - b||_1 + ||G_ba(a) - a||_1 (sec. 5.2), skipped when weight 0.
            if self.lambda_idt > 0:
                loss_idt_b = identity_loss(real_b, self.G_ab(real_b) if idt_b is None else idt_b)
                loss_idt_a = identity_loss(real_a, self.G_ba(real_a) if idt_a is None else idt_a)
            else:
                loss_idt_a = loss_idt_b = zero
            extras = {loss.name: (weight, terms_ab[loss.name] + terms_ba[loss.name])
                      for loss, weight in active_aux_losses(cfg)}
            loss_G = (cfg.lambda_gan * (terms_ab["gan"] + terms_ba["gan"])
                      + cfg.lambda_cycle * (loss_cycle_a + loss_cycle_b)
                      + self.lambda_idt * (loss_idt_a + loss_idt_b)
                      + sum((weight * value for weight, value in extras.values()), zero))
        self._optimise("G", loss_G)
        if cfg.ema > 0:
            ema_update(self.G_ab_ema, self.G_ab, cfg.ema)
            ema_update(self.G_ba_ema, self.G_ba, cfg.ema)

        # 2. Discriminators on real images and on fakes drawn from the history pools.
        set_requires_grad([self.D_a, self.D_b], True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        with self.runtime.autocast():
            pooled_b = self.pool_b.query(fake_b)
            pooled_a = self.pool_a.query(fake_a)
            loss_D_b, gp_b, acc_b = self._discriminator_terms(self.D_b, real_b, pooled_b)
            loss_D_a, gp_a, acc_a = self._discriminator_terms(self.D_a, real_a, pooled_a)
            scale = 1.0 if cfg.halve_d_loss else 2.0  # the loss's 0.5 undone (seeds/001)
            loss_D = scale * (loss_D_a + loss_D_b) + cfg.lambda_gp * (gp_a + gp_b)
        self._optimise("D", loss_D)
        self.scaler.update()

        losses = {"loss_G": loss_G, "loss_D": loss_D,
                  "loss_G_gan_ab": terms_ab["gan"], "loss_G_gan_ba": terms_ba["gan"],
                  "loss_cycle_a": loss_cycle_a, "loss_cycle_b": loss_cycle_b,
                  "loss_idt_a": loss_idt_a, "loss_idt_b": loss_idt_b,
                  "loss_D_a": loss_D_a, "loss_D_b": loss_D_b}
        losses.update({f"loss_{name}": value for name, (_, value) in extras.items()})
        if cfg.lambda_gp > 0:
            losses["loss_gp"] = gp_a + gp_b
        # One device sync per step, after all the work is queued.
        values = torch.stack([v.detach().float() for v in losses.values()]).tolist()
        out = dict(zip(losses, values, strict=True))
        acc_a, acc_b = self.gan.accuracy(*acc_a), self.gan.accuracy(*acc_b)
        # Seeds/002 Figs. 10 and 13: how often each D calls real images real and fakes fake,
        # per discriminator and their mean.
        for name, (real, fake) in (("a", acc_a), ("b", acc_b)):
            out[f"acc_D_{name}_real"], out[f"acc_D_{name}_fake"] = real, fake
        out["acc_D_real"] = (acc_a[0] + acc_b[0]) / 2
        out["acc_D_fake"] = (acc_a[1] + acc_b[1]) / 2
        return out

    def generators(self) -> dict[str, torch.nn.Module]:
        """The weights to export: with ``train.ema`` the EMA generators are ``G_ab``/``G_ba``
        (what evaluate reads) and the raw ones ``G_ab_raw``/``G_ba_raw``."""
        if self.cfg.ema > 0:
            return {"G_ab": self.G_ab_ema, "G_ba": self.G_ba_ema,
                    "G_ab_raw": self.G_ab, "G_ba_raw": self.G_ba}
        return {"G_ab": self.G_ab, "G_ba": self.G_ba}

    @torch.no_grad()
    def translate(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eval-mode translations both ways with reconstructions (for sample grids), by the
        generators that are exported (EMA when on)."""
        gens = self.generators()
        G_ab, G_ba = gens["G_ab"], gens["G_ba"]
        for net in (G_ab, G_ba):
            net.eval()
        real_a, real_b = self.runtime.tensor(real_a), self.runtime.tensor(real_b)
        fake_b, fake_a = G_ab(real_a), G_ba(real_b)
        out = {"real_a": real_a, "fake_b": fake_b, "rec_a": G_ba(fake_b),
               "real_b": real_b, "fake_a": fake_a, "rec_b": G_ab(fake_a)}
        for net in (G_ab, G_ba):
            net.train()
        return {k: v.float().cpu() for k, v in out.items()}

    def extra_state(self) -> dict[str, Any]:  # noqa: D102
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict(),
                "scaler": self.scaler.state_dict(), "augment": self.augment.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: D102
        self.pool_a.load_state_dict(state["pool_a"])
        self.pool_b.load_state_dict(state["pool_b"])
        self.scaler.load_state_dict(state["scaler"])
        if "augment" in state:  # checkpoints written before train.diffaugment existed
            self.augment.load_state_dict(state["augment"])
