"""The CycleGAN task: two generators, two discriminators, one step in the paper's order."""

from __future__ import annotations

from typing import Any

import torch

from cyclelab.losses import GAN_LOSSES, cycle_loss, identity_loss
from cyclelab.training.pool import ImagePool
from cyclelab.training.runtime import Runtime


def set_requires_grad(nets: list[torch.nn.Module], flag: bool) -> None:
    """Freeze or unfreeze ``nets`` (D is frozen while G is updated)."""
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class CycleGAN:
    """``G_ab: A -> B``, ``G_ba: B -> A``, ``D_a`` judges A, ``D_b`` judges B."""

    def __init__(self, G_ab, G_ba, D_a, D_b, train_cfg, runtime: Runtime, seed: int = 0) -> None:
        self.cfg, self.runtime = train_cfg, runtime
        self.G_ab, self.G_ba = runtime.prepare(G_ab), runtime.prepare(G_ba)
        self.D_a, self.D_b = runtime.prepare(D_a), runtime.prepare(D_b)
        self.nets = {"G_ab": self.G_ab, "G_ba": self.G_ba, "D_a": self.D_a, "D_b": self.D_b}
        betas = (train_cfg.beta1, train_cfg.beta2)
        self.optimizers = {
            "G": torch.optim.Adam([*self.G_ab.parameters(), *self.G_ba.parameters()],
                                  lr=train_cfg.lr, betas=betas),
            "D": torch.optim.Adam([*self.D_a.parameters(), *self.D_b.parameters()],
                                  lr=train_cfg.lr_d, betas=betas),
        }
        self.gan = GAN_LOSSES[train_cfg.gan_loss]
        self.pool_a = ImagePool(train_cfg.pool_size, seed=seed + 1)
        self.pool_b = ImagePool(train_cfg.pool_size, seed=seed + 2)
        self.scaler = torch.amp.GradScaler("cuda", enabled=runtime.cuda)

    def step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        """One CycleGAN update (Zhu et al. 2017, Alg. of the official code)."""
        real_a, real_b = (self.runtime.tensor(t) for t in batch)
        cfg = self.cfg
        lambda_idt = cfg.lambda_cycle * cfg.lambda_identity

        # 1. Generators, with both discriminators frozen.
        set_requires_grad([self.D_a, self.D_b], False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        with self.runtime.autocast():
            fake_b = self.G_ab(real_a)
            rec_a = self.G_ba(fake_b)
            fake_a = self.G_ba(real_b)
            rec_b = self.G_ab(fake_a)
            # Adversarial: D_b should call G_ab's output real (eq. 1), and D_a likewise.
            loss_gan_ab = self.gan.generator(self.D_b(fake_b))
            loss_gan_ba = self.gan.generator(self.D_a(fake_a))
            # Cycle consistency ||G_ba(G_ab(a)) - a||_1 + ||G_ab(G_ba(b)) - b||_1 (eq. 2).
            loss_cycle_a = cycle_loss(real_a, rec_a)
            loss_cycle_b = cycle_loss(real_b, rec_b)
            # Identity ||G_ab(b) - b||_1 + ||G_ba(a) - a||_1 (sec. 5.2), skipped when weight 0.
            if lambda_idt > 0:
                loss_idt_b = identity_loss(real_b, self.G_ab(real_b))
                loss_idt_a = identity_loss(real_a, self.G_ba(real_a))
            else:
                loss_idt_a = loss_idt_b = torch.zeros((), device=real_a.device)
            loss_G = (loss_gan_ab + loss_gan_ba
                      + cfg.lambda_cycle * (loss_cycle_a + loss_cycle_b)
                      + lambda_idt * (loss_idt_a + loss_idt_b))
        self.scaler.scale(loss_G).backward()
        self.scaler.step(self.optimizers["G"])

        # 2. Discriminators on real images and on fakes drawn from the history pools.
        set_requires_grad([self.D_a, self.D_b], True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        with self.runtime.autocast():
            pooled_b = self.pool_b.query(fake_b)
            pooled_a = self.pool_a.query(fake_a)
            loss_D_b = self.gan.discriminator(self.D_b(real_b), self.D_b(pooled_b))
            loss_D_a = self.gan.discriminator(self.D_a(real_a), self.D_a(pooled_a))
            loss_D = loss_D_a + loss_D_b
        self.scaler.scale(loss_D).backward()
        self.scaler.step(self.optimizers["D"])
        self.scaler.update()

        return {"loss_G": loss_G.item(), "loss_D": loss_D.item(),
                "loss_G_gan_ab": loss_gan_ab.item(), "loss_G_gan_ba": loss_gan_ba.item(),
                "loss_cycle_a": loss_cycle_a.item(), "loss_cycle_b": loss_cycle_b.item(),
                "loss_idt_a": loss_idt_a.item(), "loss_idt_b": loss_idt_b.item(),
                "loss_D_a": loss_D_a.item(), "loss_D_b": loss_D_b.item()}

    @torch.no_grad()
    def translate(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eval-mode translations both ways with reconstructions (for sample grids)."""
        for net in (self.G_ab, self.G_ba):
            net.eval()
        real_a, real_b = self.runtime.tensor(real_a), self.runtime.tensor(real_b)
        fake_b, fake_a = self.G_ab(real_a), self.G_ba(real_b)
        out = {"real_a": real_a, "fake_b": fake_b, "rec_a": self.G_ba(fake_b),
               "real_b": real_b, "fake_a": fake_a, "rec_b": self.G_ab(fake_a)}
        for net in (self.G_ab, self.G_ba):
            net.train()
        return {k: v.float().cpu() for k, v in out.items()}

    def extra_state(self) -> dict[str, Any]:  # noqa: D102
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: D102
        self.pool_a.load_state_dict(state["pool_a"])
        self.pool_b.load_state_dict(state["pool_b"])
        self.scaler.load_state_dict(state["scaler"])
