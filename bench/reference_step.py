"""A plain CycleGAN step, written as the official implementation writes it: the oracle that our
step is benchmarked against (``bench/bench_train_step.py``) and checked against
(``tests/test_step_equivalence.py``).

It follows ``CycleGANModel.optimize_parameters`` of junyanz/pytorch-CycleGAN-and-pix2pix with our
names (``G_ab`` is the paper's G: A -> B, ``D_b`` judges domain B):

1. six generator passes, one at a time: fake_b, rec_a, fake_a, rec_b, then the identity passes
   idt_b = G_ab(real_b), idt_a = G_ba(real_a) (skipped when their weight is 0);
2. with both discriminators frozen: the generator loss (LSGAN/vanilla/hinge adversarial terms,
   L1 cycle terms times lambda_cycle, L1 identity terms times lambda_cycle * lambda_identity),
   one backward, one Adam step of both generators;
3. the discriminators unfrozen: D_b on real_b and on a pooled fake_b (detached), its loss
   halved, backward; the same for D_a; one Adam step of both discriminators.

Every loss is read back with ``.item()``, as the official code's logging does. It lives in
``bench/``, not in the library: it is a measuring stick, not a way to train. It takes the same
networks and image pools as :class:`cyclelab.training.cyclegan.CycleGAN` (the pool is part of
the algorithm's state, not of its speed), and default (single-tensor) Adam.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _gan_loss(kind: str, pred: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """The official ``GANLoss``: MSE (lsgan) or BCE-with-logits (vanilla) against 1 or 0;
    hinge as in SAGAN (the generator's term is ``-mean(pred)``)."""
    if kind == "lsgan":
        target = torch.ones_like(pred) if target_is_real else torch.zeros_like(pred)
        return F.mse_loss(pred, target)
    if kind == "vanilla":
        target = torch.ones_like(pred) if target_is_real else torch.zeros_like(pred)
        return F.binary_cross_entropy_with_logits(pred, target)
    raise ValueError(f"reference step: no plain form of gan_loss {kind!r}")


def _set_requires_grad(nets: list[torch.nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad = flag


class ReferenceCycleGAN:
    """The official update order over given networks (already on ``device``)."""

    def __init__(self, G_ab, G_ba, D_a, D_b, train_cfg, pool_a, pool_b,
                 device: str | torch.device = "cpu") -> None:
        self.cfg = train_cfg
        self.device = torch.device(device)
        self.G_ab, self.G_ba, self.D_a, self.D_b = (n.to(self.device)
                                                    for n in (G_ab, G_ba, D_a, D_b))
        betas = (train_cfg.beta1, train_cfg.beta2)
        self.optimizer_G = torch.optim.Adam(
            [*self.G_ab.parameters(), *self.G_ba.parameters()], lr=train_cfg.lr, betas=betas,
            foreach=False)
        self.optimizer_D = torch.optim.Adam(
            [*self.D_a.parameters(), *self.D_b.parameters()], lr=train_cfg.lr_d, betas=betas,
            foreach=False)
        self.pool_a, self.pool_b = pool_a, pool_b

    def step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        """One update; the losses as floats, under our step's names."""
        cfg, gan = self.cfg, self.cfg.gan_loss
        real_a, real_b = (t.to(self.device) for t in batch)
        lambda_idt = cfg.lambda_identity * cfg.lambda_cycle

        # forward(): the four passes of the cycles.
        fake_b = self.G_ab(real_a)
        rec_a = self.G_ba(fake_b)
        fake_a = self.G_ba(real_b)
        rec_b = self.G_ab(fake_a)

        # Generators, discriminators frozen (backward_G).
        _set_requires_grad([self.D_a, self.D_b], False)
        self.optimizer_G.zero_grad()
        if lambda_idt > 0:
            idt_b = self.G_ab(real_b)
            loss_idt_b = F.l1_loss(idt_b, real_b)
            idt_a = self.G_ba(real_a)
            loss_idt_a = F.l1_loss(idt_a, real_a)
        else:
            loss_idt_a = loss_idt_b = torch.zeros((), device=self.device)
        if gan == "hinge":
            loss_gan_ab = -self.D_b(fake_b).mean()
            loss_gan_ba = -self.D_a(fake_a).mean()
        else:
            loss_gan_ab = _gan_loss(gan, self.D_b(fake_b), True)
            loss_gan_ba = _gan_loss(gan, self.D_a(fake_a), True)
        loss_cycle_a = F.l1_loss(rec_a, real_a)
        loss_cycle_b = F.l1_loss(rec_b, real_b)
        loss_G = (loss_gan_ab + loss_gan_ba
                  + cfg.lambda_cycle * (loss_cycle_a + loss_cycle_b)
                  + lambda_idt * (loss_idt_a + loss_idt_b))
        loss_G.backward()
        self.optimizer_G.step()

        # Discriminators (backward_D_A, backward_D_B in our names), one optimizer step.
        _set_requires_grad([self.D_a, self.D_b], True)
        self.optimizer_D.zero_grad()
        pooled_b = self.pool_b.query(fake_b)
        loss_D_b = self._loss_D(self.D_b, real_b, pooled_b)
        loss_D_b.backward()
        pooled_a = self.pool_a.query(fake_a)
        loss_D_a = self._loss_D(self.D_a, real_a, pooled_a)
        loss_D_a.backward()
        self.optimizer_D.step()

        losses = {"loss_G": loss_G, "loss_D": loss_D_a + loss_D_b,
                  "loss_G_gan_ab": loss_gan_ab, "loss_G_gan_ba": loss_gan_ba,
                  "loss_cycle_a": loss_cycle_a, "loss_cycle_b": loss_cycle_b,
                  "loss_idt_a": loss_idt_a, "loss_idt_b": loss_idt_b,
                  "loss_D_a": loss_D_a, "loss_D_b": loss_D_b}
        return {k: v.item() for k, v in losses.items()}

    def _loss_D(self, D, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.cfg.gan_loss == "hinge":
            return F.relu(1.0 - D(real)).mean() + F.relu(1.0 + D(fake.detach())).mean()
        return 0.5 * (_gan_loss(self.cfg.gan_loss, D(real), True)
                      + _gan_loss(self.cfg.gan_loss, D(fake.detach()), False))
