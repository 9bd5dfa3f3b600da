"""The autoencoder pretraining task (seed 000's MSE reconstruction, plus the VAE's KL term
and the inpainting mask of the other ``ae.kind`` options)."""

from __future__ import annotations

from typing import Any

import torch

from cyclelab.losses import reconstruction_loss
from cyclelab.runtime import Runtime


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) in nats for each latent dimension, batch mean."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean(dim=0)


def kl_beta(ae_cfg, step: int, steps_per_epoch: int) -> float:
    """The KL weight at ``step``: linear warm-up from 0 over ``ae.kl_anneal_epochs`` (KL
    annealing, Bowman et al. 2016), then ``ae.kl_weight``."""
    warmup = ae_cfg.kl_anneal_epochs * steps_per_epoch
    return ae_cfg.kl_weight * (min(1.0, step / warmup) if warmup else 1.0)


class AutoencoderTask:
    """Train an autoencoder of ``cyclelab.models.autoencoder`` to reconstruct images of one
    domain; its generator is what the CycleGAN receives."""

    def __init__(self, autoencoder: torch.nn.Module, ae_cfg, runtime: Runtime,
                 steps_per_epoch: int = 1) -> None:
        self.runtime, self.cfg, self.steps_per_epoch = runtime, ae_cfg, steps_per_epoch
        self.ae = runtime.prepare(autoencoder)
        self.nets = {"autoencoder": self.ae}
        self.optimizers = {"AE": torch.optim.Adam(self.ae.parameters(), lr=ae_cfg.lr,
                                                  betas=(ae_cfg.beta1, 0.999))}
        self.scaler = runtime.grad_scaler()
        self.steps = 0

    def step(self, batch: torch.Tensor) -> dict[str, float]:
        """One step: MSE of the reconstruction; for the VAE + beta * KL with free bits."""
        real = self.runtime.tensor(batch)
        self.optimizers["AE"].zero_grad(set_to_none=True)
        logs: dict[str, float] = {}
        with self.runtime.autocast():
            out = self.ae.forward_train(real)
            loss = reconstruction_loss(real, out["recon"])
            logs["loss_mse"] = loss.item()
            if "mu" in out:
                kl_dims = kl_per_dimension(out["mu"].float(), out["logvar"].float())
                # Free bits (Kingma et al. 2016): dimensions under ``free_bits`` nats cost
                # nothing, so the encoder gains nothing by collapsing them onto the prior.
                kl_cost = torch.clamp(kl_dims, min=self.cfg.free_bits).sum()
                beta = kl_beta(self.cfg, self.steps, self.steps_per_epoch)
                # The MSE is a per-pixel mean: the KL (nats per image) is spread the same way.
                loss = loss + beta * kl_cost / real[0].numel()
                logs.update(kl=kl_dims.sum().item(), kl_beta=beta,
                            kl_active_dims=int((kl_dims > self.cfg.free_bits).sum()))
            if "mask" in out:
                mask = out["mask"].expand_as(real)
                masked = ((out["recon"] - real) ** 2 * mask).sum() / mask.sum().clamp(min=1)
                logs["loss_masked"] = masked.item()
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizers["AE"])
        self.scaler.update()
        self.steps += 1
        return {"loss": loss.item(), **logs}

    @torch.no_grad()
    def reconstruct(self, batch: torch.Tensor) -> torch.Tensor:
        """Evaluation-mode reconstructions (the VAE decodes its mean; inpainting masks)."""
        self.ae.eval()
        out = self.ae(self.runtime.tensor(batch)).float().cpu()
        self.ae.train()
        return out

    def extra_state(self) -> dict[str, Any]:  # noqa: D102
        return {"scaler": self.scaler.state_dict(), "steps": self.steps}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: D102
        self.scaler.load_state_dict(state["scaler"])
        self.steps = state.get("steps", 0)
