"""The training machinery: a CycleGAN step learns, checkpoints resume only on matching params,
and an interrupted run resumed gives the numbers of an uninterrupted one."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from cyclelab import config
from cyclelab.data.dataset import SingleBatches, UnpairedBatches, to_m11, to_uint8
from cyclelab.models.build import build_discriminator, build_generator
from cyclelab.runtime import make_runtime, pick_device, seed_everything
from cyclelab.training.checkpoint import load_if_matching
from cyclelab.training.cyclegan import CycleGAN
from cyclelab.training.loop import fit
from cyclelab.training.schedules import build_schedule


def images(n: int, value: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(value)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8)


def make_gan(cfg: config.Config) -> CycleGAN:
    seed_everything(cfg.seed)
    m = cfg.model
    return CycleGAN(build_generator(m), build_generator(m), build_discriminator(m),
                    build_discriminator(m), cfg.train, make_runtime("cpu"), seed=cfg.seed)


def run(cfg: config.Config, ckpt, epochs: int) -> list[dict]:
    gan = make_gan(cfg)
    batches = UnpairedBatches(images(6, 1), images(5, 2), cfg.train.batch_size, cfg.seed,
                              max_steps=cfg.train.max_steps_per_epoch)
    return fit(gan, batches, epochs=epochs, schedule=build_schedule(cfg.train),
               checkpoint_path=ckpt, fingerprint=config.fingerprint(cfg.train),
               desc="test").history


def test_step_returns_all_losses_and_updates_weights(tiny_params):
    gan = make_gan(tiny_params)
    before = [p.clone() for p in gan.G_ab.parameters()]
    d_before = [p.clone() for p in gan.D_b.parameters()]
    losses = gan.step((to_m11(images(2, 1)), to_m11(images(2, 2))))
    assert set(losses) >= {"loss_G", "loss_D", "loss_cycle_a", "loss_idt_b", "loss_D_a"}
    total = (losses["loss_G_gan_ab"] + losses["loss_G_gan_ba"]
             + 10 * (losses["loss_cycle_a"] + losses["loss_cycle_b"])
             + 5 * (losses["loss_idt_a"] + losses["loss_idt_b"]))
    assert losses["loss_G"] == pytest.approx(total, rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(before, gan.G_ab.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, gan.D_b.parameters(), strict=True))


def test_cycle_loss_falls_on_a_fixed_batch(tiny_raw):
    tiny_raw["train"].update(lr=1.0e-3, pool_size=0)
    gan = make_gan(config.from_dict(tiny_raw))
    # Smooth images (4x4 colour blocks scaled up): learnable in a few steps, unlike noise.
    smooth = [torch.nn.functional.interpolate(images(2, s)[:, :, :4, :4].float(), size=32)
              for s in (1, 2)]
    batch = tuple(to_m11(x.to(torch.uint8)) for x in smooth)
    first = gan.step(batch)["loss_cycle_a"]
    for _ in range(25):
        last = gan.step(batch)["loss_cycle_a"]
    assert last < 0.8 * first


def test_resume_equals_uninterrupted(tiny_params, tmp_path):
    """Two epochs in one go and one epoch, stopped, then resumed for the second end with the
    same weights bit for bit (every net, the optimisers' state through them) and the same
    second-epoch losses, which the resumed run computed itself."""
    def trained(ckpt, epochs):
        gan = make_gan(tiny_params)
        batches = UnpairedBatches(images(6, 1), images(5, 2), tiny_params.train.batch_size,
                                  tiny_params.seed, max_steps=tiny_params.train.max_steps_per_epoch)
        result = fit(gan, batches, epochs=epochs, schedule=build_schedule(tiny_params.train),
                     checkpoint_path=ckpt, fingerprint="f", desc="test")
        return gan, result

    full, full_result = trained(tmp_path / "full.pt", 2)
    trained(tmp_path / "split.pt", 1)
    resumed, resumed_result = trained(tmp_path / "split.pt", 2)
    assert resumed_result.resumed_from_epoch == 1
    for name, net in full.nets.items():
        for key, tensor in net.state_dict().items():
            assert torch.equal(resumed.nets[name].state_dict()[key], tensor), f"{name}.{key}"
    timing = {"seconds"}  # wall time, the one field that may differ
    assert {k: v for k, v in resumed_result.history[1].items() if k not in timing} == \
        {k: v for k, v in full_result.history[1].items() if k not in timing}


def test_checkpoint_of_other_params_is_not_resumed(tiny_raw, tmp_path):
    cfg = config.from_dict(tiny_raw)
    run(cfg, tmp_path / "c.pt", epochs=1)
    tiny_raw["train"]["lr"] = 1.0e-4
    other = config.from_dict(tiny_raw)
    state, message = load_if_matching(tmp_path / "c.pt", config.fingerprint(other.train))
    assert state is None and "other params" in message
    assert len(run(other, tmp_path / "c.pt", epochs=1)) == 1  # started fresh, not "done"


def test_unreadable_checkpoint_stops_names_the_ways_on_and_is_kept(tmp_path):
    """A truncated checkpoint may hold hours of a ``persist: true`` run: the run stops with one
    line naming the file, deleting it and ``train.resume: never``, and leaves it as it was."""
    from cyclelab.training.checkpoint import CheckpointError

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError) as err:
        fit(Exploding(bad=0), two_batches, epochs=1, schedule=lambda e: 1.0,
            checkpoint_path=bad, fingerprint="f")
    line = str(err.value)
    assert "\n" not in line and str(bad) in line and "unreadable" in line
    assert "delete it" in line and "train.resume: never" in line
    assert bad.read_bytes() == b"not a checkpoint"


def test_resume_never_starts_fresh_over_any_checkpoint(tmp_path):
    ckpt = tmp_path / "c.pt"
    ckpt.write_bytes(b"truncated")
    result = fit(Exploding(bad=0), two_batches, epochs=1, schedule=lambda e: 1.0,
                 checkpoint_path=ckpt, fingerprint="f", resume="never")
    assert result.resumed_from_epoch == 0 and len(result.history) == 1
    assert torch.load(ckpt, weights_only=False)["epoch"] == 0  # overwritten by this run
    # A good checkpoint of the same params is not resumed either.
    again = fit(Exploding(bad=0), two_batches, epochs=1, schedule=lambda e: 1.0,
                checkpoint_path=ckpt, fingerprint="f", resume="never")
    assert again.resumed_from_epoch == 0 and len(again.history) == 1
    state, message = load_if_matching(ckpt, "f")
    assert state is not None and "resuming" in message


def test_same_seed_same_weights_other_seed_other_weights(tiny_params, tmp_path):
    """Every weight of a run repeats bit for bit with its seed (on one CPU), and another seed
    gives other weights (a seed that reached nothing would pass the first half alone)."""
    def weights(cfg, name):
        gan = make_gan(cfg)
        batches = UnpairedBatches(images(6, 1), images(5, 2), cfg.train.batch_size, cfg.seed,
                                  max_steps=cfg.train.max_steps_per_epoch)
        fit(gan, batches, epochs=1, schedule=build_schedule(cfg.train),
            checkpoint_path=tmp_path / f"{name}.pt", fingerprint=name, desc="test")
        return {f"{n}.{k}": v for n, net in gan.nets.items() for k, v in net.state_dict().items()}

    a, b = weights(tiny_params, "a"), weights(tiny_params, "b")
    other = weights(dataclasses.replace(tiny_params, seed=tiny_params.seed + 1), "c")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], other[k]) for k in a)


def test_batches_are_unpaired_and_cover_the_larger_domain():
    a, b = images(6, 1), images(3, 2)
    batches = UnpairedBatches(a, b, batch_size=2, seed=0, flip=False)
    got = list(batches(0))
    assert len(got) == 3 and got[0][0].shape == (2, 3, 32, 32)
    seen_a = torch.cat([to_uint8(x) for x, _ in got])
    assert sorted(seen_a.flatten(1).sum(1).tolist()) == sorted(a.flatten(1).sum(1).tolist())
    assert [x.shape for x in SingleBatches(a, 4, seed=0, flip=True)(0)] == [(4, 3, 32, 32)]
    assert not torch.equal(list(batches(0))[0][0], list(batches(1))[0][0])


@pytest.mark.parametrize(("cuda", "mps", "asked", "want"), [
    (True, True, "auto", "cuda"), (False, True, "auto", "mps"), (False, False, "auto", "cpu"),
    (True, False, "cpu", "cpu"), (True, False, "cuda", "cuda"), (False, True, "mps", "mps")])
def test_device_choice_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, asked, want):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert pick_device(asked).type == want


@pytest.mark.parametrize(("asked", "message"), [("cuda", "no CUDA device"),
                                                ("mps", "MPS is not available")])
def test_asking_for_an_absent_device_is_one_line_naming_the_key(monkeypatch, asked, message):
    from cyclelab.errors import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=f"device: got '{asked}' but {message}"):
        pick_device(asked)


def test_autoencoder_learns_to_reconstruct(tiny_params):
    from cyclelab.models.autoencoder import Autoencoder
    from cyclelab.training.autoencoder import AutoencoderTask

    seed_everything(0)
    gen = torch.Generator().manual_seed(3)
    smooth = torch.nn.functional.interpolate(
        torch.randint(0, 256, (8, 3, 4, 4), generator=gen).float(), size=32).to(torch.uint8)
    ae = Autoencoder(build_generator(tiny_params.model), 32, channels=8, latent_dim=8)
    task = AutoencoderTask(ae, tiny_params.ae, make_runtime("cpu"))
    batch = to_m11(smooth)
    first = task.step(batch)["loss_mse"]
    for _ in range(40):
        last = task.step(batch)["loss_mse"]
    assert last < 0.5 * first
    assert task.reconstruct(batch).shape == batch.shape


class Exploding:
    """A task whose loss is NaN at step ``bad``."""

    def __init__(self, bad: int) -> None:
        self.net = torch.nn.Linear(2, 1)
        self.nets = {"net": self.net}
        self.optimizers = {"opt": torch.optim.SGD(self.net.parameters(), lr=0.1)}
        self.bad, self.n = bad, 0

    def step(self, batch):
        self.n += 1
        self.optimizers["opt"].zero_grad()
        loss = self.net(batch).pow(2).mean()
        loss.backward()
        self.optimizers["opt"].step()
        return {"loss": float("nan") if self.n == self.bad else loss.item()}

    def extra_state(self):
        return {}

    def load_extra_state(self, state):
        pass


def two_batches(epoch):
    return [torch.ones(3, 2), torch.full((3, 2), 2.0)]


def test_nan_stops_with_the_step_number_and_keeps_the_last_good_checkpoint(tmp_path):
    from cyclelab.training.loop import TrainingDiverged

    ckpt = tmp_path / "c.pt"
    task = Exploding(bad=3)
    with pytest.raises(TrainingDiverged, match=r"loss = nan at step 3 \(epoch 2, step 1") as err:
        fit(task, two_batches, epochs=3, schedule=lambda e: 1.0, checkpoint_path=ckpt,
            fingerprint="f")
    assert str(ckpt) in str(err.value) and "is kept" in str(err.value)
    state = torch.load(ckpt, weights_only=False)
    assert state["epoch"] == 0 and state["partial"] is None  # the end of epoch 1, the good one


def test_interrupted_mid_epoch_resumes_to_the_uninterrupted_numbers(tiny_params, tmp_path):
    full = run(tiny_params, tmp_path / "full.pt", epochs=2)
    gan = make_gan(tiny_params)
    batches = UnpairedBatches(images(6, 1), images(5, 2), 2, 0, max_steps=2)

    def dying(epoch):
        for i, batch in enumerate(batches(epoch)):
            if epoch == 1 and i == 1:
                raise KeyboardInterrupt  # killed after one step of epoch 2
            yield batch

    with pytest.raises(KeyboardInterrupt):
        fit(gan, dying, epochs=2, schedule=build_schedule(tiny_params.train),
            checkpoint_path=tmp_path / "k.pt", fingerprint=config.fingerprint(tiny_params.train),
            checkpoint_minutes=1e-9)
    assert torch.load(tmp_path / "k.pt", weights_only=False)["partial"]["steps"] == 1
    resumed = run(tiny_params, tmp_path / "k.pt", epochs=2)
    for a, b in zip(full, resumed, strict=True):
        assert a["loss_G"] == pytest.approx(b["loss_G"], rel=1e-6)
        assert a["loss_D"] == pytest.approx(b["loss_D"], rel=1e-6)


def test_incompatible_checkpoint_is_named_and_never_half_loaded(tmp_path):
    from cyclelab.training.checkpoint import CheckpointError

    ckpt = tmp_path / "c.pt"
    fit(Exploding(bad=0), two_batches, epochs=1, schedule=lambda e: 1.0, checkpoint_path=ckpt,
        fingerprint="f")
    other = Exploding(bad=0)
    other.extra = torch.nn.Linear(3, 3)  # a second net the checkpoint does not have
    other.nets = {"net": other.net, "extra": other.extra}
    before = other.net.weight.clone()
    with pytest.raises(CheckpointError, match=f"checkpoint {ckpt} does not fit.*'extra'"):
        fit(other, two_batches, epochs=2, schedule=lambda e: 1.0, checkpoint_path=ckpt,
            fingerprint="f")
    assert torch.equal(other.net.weight, before)


def test_ema_generators_follow_the_weights(tiny_raw):
    tiny_raw["train"]["ema"] = 0.9
    gan = make_gan(config.from_dict(tiny_raw))
    start = [p.clone() for p in gan.G_ab.parameters()]
    losses = gan.step((to_m11(images(2, 1)), to_m11(images(2, 2))))
    assert 0.0 <= losses["acc_D_real"] <= 1.0 and 0.0 <= losses["acc_D_fake"] <= 1.0
    for s, p, e in zip(start, gan.G_ab.parameters(), gan.G_ab_ema.parameters(), strict=True):
        torch.testing.assert_close(e, 0.9 * s + 0.1 * p)
    assert gan.generators()["G_ab"] is gan.G_ab_ema and gan.generators()["G_ab_raw"] is gan.G_ab


def test_discriminator_accuracy_is_reported_per_discriminator(tiny_raw):
    """D_a calls everything real (output 1), D_b everything fake (output 0): D_a is right on
    every real image and wrong on every fake, D_b the reverse; the means are what they were."""
    gan = make_gan(config.from_dict(tiny_raw))
    gan.D_a.register_forward_hook(lambda module, inputs, out: out * 0 + 1.0)
    gan.D_b.register_forward_hook(lambda module, inputs, out: out * 0)
    losses = gan.step((to_m11(images(2, 1)), to_m11(images(2, 2))))
    assert (losses["acc_D_a_real"], losses["acc_D_a_fake"]) == (1.0, 0.0)
    assert (losses["acc_D_b_real"], losses["acc_D_b_fake"]) == (0.0, 1.0)
    assert losses["acc_D_real"] == losses["acc_D_fake"] == 0.5


def linear_critic(weights: list[float]) -> torch.nn.Conv2d:
    """D(x) = w . x at every pixel (a 1x1 convolution): its input gradient is w everywhere."""
    critic = torch.nn.Conv2d(3, 1, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor(weights).view(1, 3, 1, 1))
    return critic


def test_wgan_gp_step_gives_the_hand_computed_losses_and_gradient(tiny_raw):
    """WGAN-GP (lambda_gp 10) with linear critics: D's loss is mean D(fake) - mean D(real), the
    penalty (||w|| sqrt(H W) - 1)^2 per critic whatever the interpolation, both in D's loss and
    in D's gradient (SGD, so .grad is what the step applied)."""
    tiny_raw["train"].update(gan_loss="wgan-gp", lambda_gp=10.0, optimizer_d="sgd", pool_size=0)
    cfg = config.from_dict(tiny_raw)
    seed_everything(0)
    w = torch.tensor([0.05, -0.02, 0.04])
    G_ab, G_ba = build_generator(cfg.model), build_generator(cfg.model)
    real_a, real_b = to_m11(images(2, 1)), to_m11(images(2, 2))
    with torch.no_grad():  # the translations D judges: the generators before their update
        fake_b, fake_a = G_ab(real_a), G_ba(real_b)
    gan = CycleGAN(G_ab, G_ba, linear_critic(w.tolist()), linear_critic(w.tolist()), cfg.train,
                   make_runtime("cpu"))
    losses = gan.step((real_a, real_b))
    side = 32
    norm = w.norm().item() * side  # ||grad_x sum over pixels of w . x|| = ||w|| sqrt(H W)
    assert losses["loss_gp"] == pytest.approx(2 * (norm - 1) ** 2, rel=1e-5)  # D_a and D_b
    for name, real, fake in (("b", real_b, fake_b), ("a", real_a, fake_a)):
        channel_gap = fake.mean((0, 2, 3)) - real.mean((0, 2, 3))
        assert losses[f"loss_D_{name}"] == pytest.approx((w * channel_gap).sum().item(),
                                                         rel=1e-4, abs=1e-6)
        # d/dw [w . gap + 10 (||w|| s - 1)^2] = gap + 20 (||w|| s - 1) s w / ||w||
        expected = channel_gap + 20 * (norm - 1) * side * w / w.norm()
        grad = getattr(gan, f"D_{name}").weight.grad.flatten()
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-6)
    assert losses["loss_D"] == pytest.approx(
        losses["loss_D_a"] + losses["loss_D_b"] + 10 * losses["loss_gp"], rel=1e-5)


def test_seed001_cache_feeds_d_and_edge_colour_terms_read_each_translation_and_its_source(
        tiny_raw):
    """train.pool seed001 (cache 4, block 1, every 2nd call): on the first step D_b judges the
    new fakes, on the second one image drawn from the cache, which then holds both steps' fakes.
    loss_edge / loss_color compare each translation with its own source."""
    from cyclelab.losses import colour_consistency_loss, edge_consistency_loss

    tiny_raw["train"].update(pool="seed001", pool_size=4, cache_block=1, cache_every=2,
                             lambda_edge=1.0, lambda_color=1.0)
    cfg = config.from_dict(tiny_raw)
    seed_everything(0)
    m = cfg.model
    gan = CycleGAN(build_generator(m), build_generator(m), linear_critic([0.1, 0.2, -0.1]),
                   linear_critic([0.1, 0.2, -0.1]), cfg.train, make_runtime("cpu"), seed=0)
    seen: dict[str, list[torch.Tensor]] = {"a": [], "b": []}
    for name in seen:  # calls per step: the fake in G's update, then real and pooled fake
        getattr(gan, f"D_{name}").register_forward_hook(
            lambda net, args, out, name=name: seen[name].append(args[0].detach().clone()))
    real_a, real_b = to_m11(images(2, 1)), to_m11(images(2, 2))
    first = gan.step((real_a, real_b))
    fake_b1, fake_a1 = seen["b"][0], seen["a"][0]
    assert torch.equal(seen["b"][1], real_b) and torch.equal(seen["b"][2], fake_b1)
    assert first["loss_edge"] == pytest.approx(
        (edge_consistency_loss(real_a, fake_b1) + edge_consistency_loss(real_b, fake_a1)).item(),
        rel=1e-5)
    assert first["loss_color"] == pytest.approx(
        (colour_consistency_loss(real_a, fake_b1)
         + colour_consistency_loss(real_b, fake_a1)).item(), rel=1e-5)
    gan.step((real_a, real_b))
    fake_b2, drawn = seen["b"][3], seen["b"][5]
    assert not torch.equal(fake_b2, fake_b1)  # G moved: the two steps' fakes differ
    cached = [*fake_b1, *fake_b2]
    assert len(gan.pool_b.images) == 4
    assert all(torch.equal(c[0], f) for c, f in zip(gan.pool_b.images, cached, strict=True))
    assert drawn.shape == (1, 3, 32, 32) and any(torch.equal(drawn[0], c) for c in cached)


@pytest.mark.parametrize(("precision", "dtype"), [("bf16", torch.bfloat16),
                                                  ("fp32", torch.float32)])
def test_steps_compute_in_the_runtime_precision(tiny_params, precision, dtype):
    """Under bf16 autocast on the CPU the autoencoder's, G's and D's convolutions compute in
    bf16, except D inside the gradient penalty (fp32); the weights stay fp32 and still move."""
    from cyclelab.runtime import Runtime

    runtime = Runtime(torch.device("cpu"), precision)
    ae = _ae_task(tiny_params, runtime)
    gan = _gan_with(tiny_params, runtime, lambda_gp=10.0)
    seen: dict[str, set] = {}
    for name, net in (("ae", ae.ae), ("G_ab", gan.G_ab), ("D_b", gan.D_b)):
        conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_hook(
            lambda m, args, out, name=name: seen.setdefault(name, set()).add(out.dtype))
    before = [p.clone() for p in ae.ae.parameters()]
    ae.step(to_m11(images(4, 1)))
    losses = gan.step((to_m11(images(2, 1)), to_m11(images(2, 2))))
    assert seen == {"ae": {dtype}, "G_ab": {dtype}, "D_b": {dtype, torch.float32}}
    assert all(p.dtype == torch.float32 for p in [*ae.ae.parameters(), *gan.D_b.parameters()])
    assert any(not torch.equal(a, b) for a, b in zip(before, ae.ae.parameters(), strict=True))
    assert losses["loss_gp"] > 0


def test_relativistic_with_feature_matching_on_the_dual_head(tiny_raw):
    tiny_raw["model"]["discriminator"] = "dual_head"
    tiny_raw["train"].update(gan_loss="relativistic", lambda_fm=5.0, lambda_gp=10.0)
    gan = make_gan(config.from_dict(tiny_raw))
    losses = gan.step((to_m11(images(2, 1)), to_m11(images(2, 2))))
    assert losses["loss_fm"] > 0 and math.isfinite(losses["loss_G"])
    tiny_raw["model"]["discriminator"] = "patch"
    with pytest.raises(config.ConfigError, match="dual_head"):
        config.from_dict(tiny_raw)


def test_resize_crop_flip_and_sharding_of_batches():
    a, b = images(4, 1), images(4, 2)
    plain = list(UnpairedBatches(a, b, 4, seed=0, flip=False)(0))
    same = list(UnpairedBatches(a, b, 4, seed=0, flip=False, load_size=32, crop_size=32)(0))
    assert all(torch.equal(x[0], y[0]) for x, y in zip(plain, same, strict=True))
    cropped = list(UnpairedBatches(a, b, 4, seed=0, load_size=40, crop_size=32)(0))
    assert cropped[0][0].shape == (4, 3, 32, 32)
    ordered = torch.cat([to_uint8(x) for x, _ in plain])
    assert sorted(ordered.flatten(1).sum(1).tolist()) == sorted(a.flatten(1).sum(1).tolist())
    whole = list(UnpairedBatches(a, b, 4, seed=0, load_size=40, crop_size=32)(0))
    halves = [list(UnpairedBatches(a, b, 4, seed=0, load_size=40, crop_size=32, rank=r,
                                   world_size=2)(0)) for r in (0, 1)]
    for i, (real_a, real_b) in enumerate(whole):
        assert torch.equal(torch.cat([halves[0][i][0], halves[1][i][0]]), real_a)
        assert torch.equal(torch.cat([halves[0][i][1], halves[1][i][1]]), real_b)


def _ae_task(tiny_params, runtime):
    from cyclelab.models.autoencoder import build_autoencoder
    from cyclelab.training.autoencoder import AutoencoderTask

    ae = build_autoencoder(tiny_params.ae, build_generator(tiny_params.model, 32), 32)
    return AutoencoderTask(ae, tiny_params.ae, runtime)


def _gan_with(tiny_params, runtime, **train):
    seed_everything(0)
    m = tiny_params.model
    return CycleGAN(build_generator(m), build_generator(m), build_discriminator(m),
                    build_discriminator(m), dataclasses.replace(tiny_params.train, **train),
                    runtime)


def test_autoencoder_and_cyclegan_take_their_loss_scaler_from_one_policy(tiny_params,
                                                                         monkeypatch):
    from cyclelab.runtime import Runtime

    made = []

    def policy(self):
        made.append(torch.amp.GradScaler("cuda", enabled=False))
        return made[-1]

    monkeypatch.setattr(Runtime, "grad_scaler", policy)
    runtime = Runtime(torch.device("cpu"), "bf16")
    ae, gan = _ae_task(tiny_params, runtime), _gan_with(tiny_params, runtime)
    assert len(made) == 2 and ae.scaler is made[0] and gan.scaler is made[1]


@pytest.mark.parametrize(("device", "precision", "scaled"), [
    ("cpu", "fp32", False), ("cpu", "bf16", False), ("cpu", "fp16", False),
    ("cuda", "fp32", False), ("cuda", "bf16", False), ("cuda", "fp16", True)])
def test_loss_scaling_is_for_fp16_on_cuda_only(device, precision, scaled):
    from cyclelab.runtime import Runtime

    runtime = Runtime(torch.device(device), precision)
    assert runtime.needs_scaler is scaled
    if not scaled or torch.cuda.is_available():  # a scaler asked for without CUDA turns off
        assert runtime.grad_scaler().is_enabled() is scaled


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autoencoder_scales_its_loss_as_cyclegan_does_on_cuda(tiny_params, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    runtime = make_runtime("cuda", precision)
    ae, gan = _ae_task(tiny_params, runtime), _gan_with(tiny_params, runtime, lambda_gp=10.0)
    assert ae.scaler.is_enabled() is gan.scaler.is_enabled() is (precision == "fp16")
    assert math.isfinite(ae.step(to_m11(images(4, 1)))["loss_mse"])
    losses = gan.step((to_m11(images(2, 1)), to_m11(images(2, 2))))
    assert all(math.isfinite(v) for v in losses.values()) and losses["loss_gp"] > 0


def test_sgd_optimisers_take_plain_gradient_steps(tiny_raw):
    """train.optimizer_g / optimizer_d: sgd (seeds/003's "vanilla SGD"): with momentum 0
    each weight moves by exactly -lr * its gradient; adam stays the default."""
    gan = make_gan(config.from_dict(tiny_raw))
    assert all(isinstance(o, torch.optim.Adam) for o in gan.optimizers.values())
    tiny_raw["train"].update(optimizer_g="sgd", optimizer_d="sgd", lr=0.05, lr_d=0.01)
    gan = make_gan(config.from_dict(tiny_raw))
    assert all(isinstance(o, torch.optim.SGD) for o in gan.optimizers.values())
    assert [o.param_groups[0]["lr"] for o in gan.optimizers.values()] == [0.05, 0.01]
    assert all(o.param_groups[0]["momentum"] == 0.0 for o in gan.optimizers.values())
    param = next(gan.D_a.parameters())
    before = param.detach().clone()
    gan.step((to_m11(images(2, 1)), to_m11(images(2, 2))))
    torch.testing.assert_close(param.detach(), before - 0.01 * param.grad)


@pytest.mark.parametrize("gan_loss", ["lsgan", "vanilla"])
def test_unhalved_d_loss_makes_lambda_gp_the_seed001_lambda(tiny_params, gan_loss):
    """train.halve_d_loss false (seeds/001's E(D(x)-1)^2 + E D(G(z))^2 + lambda GP): D's loss and
    gradient with lambda_gp 10 are exactly twice those of the halved loss with lambda_gp 5."""
    runtime = make_runtime("cpu")
    batch = (to_m11(images(2, 1)), to_m11(images(2, 2)))
    runs = {}
    for halve, gp in ((True, 5.0), (False, 10.0)):
        gan = _gan_with(tiny_params, runtime, gan_loss=gan_loss, lambda_gp=gp, halve_d_loss=halve)
        runs[halve] = (gan.step(batch), gan.D_b.model[0].weight.grad.clone())
    (halved, grad_halved), (full, grad_full) = runs[True], runs[False]
    assert full["loss_gp"] == pytest.approx(halved["loss_gp"]) and halved["loss_gp"] > 0
    assert full["loss_D"] == pytest.approx(2 * halved["loss_D"], rel=1e-5)
    torch.testing.assert_close(grad_full, 2 * grad_halved, rtol=1e-4, atol=1e-7)


def test_unhalved_d_loss_is_refused_for_losses_without_the_half(tiny_raw):
    tiny_raw["train"].update(gan_loss="hinge", halve_d_loss=False)
    with pytest.raises(config.ConfigError, match="halve_d_loss false .* gan_loss hinge"):
        config.from_dict(tiny_raw)
