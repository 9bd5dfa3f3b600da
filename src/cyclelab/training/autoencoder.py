"""The autoencoder pretraining task of seeds/000 (MSE reconstruction)."""

from __future__ import annotations

from typing import Any

import torch

from cyclelab.losses import reconstruction_loss
from cyclelab.training.runtime import Runtime


class AutoencoderTask:
    """Train ``generator(decoder(encoder(x)))`` to reconstruct images of one domain."""

    def __init__(self, autoencoder: torch.nn.Module, ae_cfg, runtime: Runtime) -> None:
        self.runtime = runtime
        self.ae = runtime.prepare(autoencoder)
        self.nets = {"autoencoder": self.ae}
        self.optimizers = {"AE": torch.optim.Adam(self.ae.parameters(), lr=ae_cfg.lr,
                                                  betas=(ae_cfg.beta1, 0.999))}
        self.scaler = torch.amp.GradScaler("cuda", enabled=runtime.cuda)

    def step(self, batch: torch.Tensor) -> dict[str, float]:
        """One MSE step."""
        real = self.runtime.tensor(batch)
        self.optimizers["AE"].zero_grad(set_to_none=True)
        with self.runtime.autocast():
            loss = reconstruction_loss(real, self.ae(real))
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizers["AE"])
        self.scaler.update()
        return {"loss_mse": loss.item()}

    @torch.no_grad()
    def reconstruct(self, batch: torch.Tensor) -> torch.Tensor:  # noqa: D102
        self.ae.eval()
        out = self.ae(self.runtime.tensor(batch)).float().cpu()
        self.ae.train()
        return out

    def extra_state(self) -> dict[str, Any]:  # noqa: D102
        return {"scaler": self.scaler.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: D102
        self.scaler.load_state_dict(state["scaler"])
