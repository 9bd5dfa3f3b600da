"""The rules that tie several keys of ``params.yaml`` together (each key alone is checked by the
schema): the image size must survive the networks, finetunes name their parent, losses have the
network they read, the training size suits the networks built for ``data.image_size``."""

from __future__ import annotations

from cyclelab.config_schema import (
    UNHALVED_D_LOSSES,
    Config,
    DataConfig,
    ModelConfig,
    TrainConfig,
)
from cyclelab.errors import ConfigError
from cyclelab.models.sizes import smallest_input, unet_depth


def check(cfg: Config) -> None:
    """Every cross-key rule, in the order a user would fix them; :class:`ConfigError` on the
    first broken one."""
    _check_dataset(cfg)
    _check_shapes(cfg)
    _check_training(cfg)


def _check_shapes(cfg: Config) -> None:
    """Keys that are valid alone but not together: the image size must survive the networks."""
    seeds = cfg.study.seeds
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"study.seeds: got {seeds!r}, expected one or more distinct integers")
    size = cfg.data.image_size
    for name in ("", *cfg.variants):  # finetunes keep their parent's networks
        model = cfg.variant(name)[1] if name else cfg.model
        where = f"variants.{name}.model" if name and cfg.variants[name].model else "model"
        if model.generator == "unet":  # depth follows the size: it must halve twice
            if size % 4:
                raise ConfigError(f"data.image_size: got {size}, must be a multiple of 4 for "
                                  f"{where}.generator=unet")
        elif size % 2 ** model.n_downsampling:
            raise ConfigError(f"data.image_size: got {size}, must be a multiple of "
                              f"{2 ** model.n_downsampling} for "
                              f"{where}.n_downsampling={model.n_downsampling}")
        _check_discriminator(model, size, where)
        if model.init == "kaiming" and model.init_gain != ModelConfig().init_gain:
            raise ConfigError(f"{where}.init_gain: got {model.init_gain}, but init kaiming "
                              f"takes no gain (He's fan-in scale); remove init_gain or use "
                              f"init normal, xavier or orthogonal")
    # The autoencoders train on what the CycleGAN trains on (the top-level train.*).
    ae_size, ae_key = training_size(cfg.data, cfg.train)
    if cfg.ae.kind == "seed000" and ae_size % 8:
        raise ConfigError(f"{ae_key}: got {ae_size}, must be a multiple of 8 for "
                          f"ae.kind=seed000 (three stride-2 convolutions)")
    if cfg.ae.kind == "inpaint" and cfg.ae.mask_patch > ae_size:
        raise ConfigError(f"ae.mask_patch: got {cfg.ae.mask_patch}, must be <= "
                          f"{ae_key}={ae_size}")


def training_size(data: DataConfig, train: TrainConfig) -> tuple[int, str]:
    """The side of the images the networks train on, and the key that sets it:
    ``train.crop_size``, else ``train.load_size``, else ``data.image_size``. The networks are
    built for ``data.image_size`` (the U-Net's depth follows it) and evaluated at it."""
    if train.crop_size:
        return train.crop_size, "train.crop_size"
    if train.load_size:
        return train.load_size, "train.load_size"
    return data.image_size, "data.image_size"


def _check_discriminator(model: ModelConfig, size: int, where: str,
                         key: str = "data.image_size") -> None:
    """The smallest image each discriminator accepts (``models.sizes.smallest_input``); ``key``
    names the setting that makes the images ``size`` px."""
    kind, n = model.discriminator, model.n_layers_d
    if kind == "random_crop":
        if model.d_crop > size:
            raise ConfigError(f"{where}.d_crop: got {model.d_crop}, must be <= {key}={size}")
        return
    smallest = smallest_input(kind, n)  # the networks' own rule (models/sizes.py)
    if size < smallest:
        raise ConfigError(f"{key}: got {size}, the discriminator needs >= "
                          f"{smallest} with {where}.n_layers_d={n} ({kind}); lower "
                          f"n_layers_d or raise {key.split('.')[1]}")


def _check_finetunes(cfg: Config) -> None:
    """``variants`` start from scratch or the autoencoders; ``finetunes`` from a trained variant,
    which dvc.yaml's finetune@<name> stage depends on (a matrix stage cannot)."""
    for name, variant in cfg.variants.items():
        if variant.init not in ("random", "ae"):
            hint = (f"; to fine-tune {variant.init!r}'s weights move {name} under finetunes: "
                    f"(dvc.yaml's finetune stage depends on that variant's models)"
                    if variant.init in cfg.runs else "")
            raise ConfigError(f"variants.{name}.init: got {variant.init!r}, allowed: random, "
                              f"ae{hint}")
    for name, finetune in cfg.finetunes.items():
        where = f"finetunes.{name}"
        if name in cfg.variants:
            raise ConfigError(f"{where}: the name is also under variants:; rename one (names "
                              "are output folders)")
        if finetune.init not in cfg.runs or finetune.init == name:
            raise ConfigError(f"{where}.init: got {finetune.init!r}, expected the variant (or "
                              f"another finetune) to start from: {', '.join(cfg.variants)}")
        if finetune.model:
            raise ConfigError(f"{where}.model: a finetune keeps its parent's networks (it loads "
                              f"their weights); remove {', '.join(finetune.model)} or make a "
                              "variant")
        chain, parent = [name], finetune.init
        while parent in cfg.finetunes:
            if parent in chain:
                raise ConfigError(f"{where}.init: a cycle, {' -> '.join([*chain, parent])}")
            chain.append(parent)
            parent = cfg.finetunes[parent].init
    _check_restarts(cfg)


def _check_restarts(cfg: Config) -> None:
    """``train.restart_optimizers: parent`` needs a parent whose final optimisers fit: a
    finetune, the same optimiser kinds, a parent whose checkpoint ends with its exported
    weights (a staged one exports a chosen candidate instead)."""
    for name, variant in cfg.variants.items():
        if cfg.variant(name)[2].restart_optimizers == "parent":
            key = (f"variants.{name}.train" if "restart_optimizers" in variant.train
                   else "train")
            raise ConfigError(f"{key}.restart_optimizers: got 'parent', but variant {name} has "
                              "no parent to take optimisers from (a finetune has); set it under "
                              "finetunes.<name>.train and keep fresh here")
    for name, finetune in cfg.finetunes.items():
        train = cfg.variant(name)[2]
        if train.restart_optimizers != "parent":
            continue
        parent = cfg.variant(finetune.init)[2]
        where = f"finetunes.{name}: train.restart_optimizers parent"
        for key in ("optimizer_g", "optimizer_d"):
            if getattr(train, key) != getattr(parent, key):
                raise ConfigError(f"{where} continues {finetune.init}'s {getattr(parent, key)} "
                                  f"state, but train.{key} is {getattr(train, key)}; use the "
                                  "same optimiser or restart_optimizers fresh")
        if parent.stage_epochs:
            raise ConfigError(f"{where}: {finetune.init} is staged (train.stage_*), so its "
                              "weights are a chosen candidate and its checkpoint holds the last "
                              "epoch's optimisers; use restart_optimizers fresh")


def _check_training(cfg: Config) -> None:
    """Training keys valid alone but not together (losses need their network, stages agree)."""
    _check_finetunes(cfg)
    for name in cfg.runs:
        model, train = cfg.variant(name)[1:]
        where = f"{'variants' if name in cfg.variants else 'finetunes'}.{name}"
        if train.gan_loss == "relativistic" and model.discriminator != "dual_head":
            raise ConfigError(f"{where}: train.gan_loss relativistic reads the global head of "
                              f"model.discriminator dual_head (got {model.discriminator})")
        if train.stage_epochs and train.stage_select == "gms" and not cfg.eval.is_weights:
            raise ConfigError(f"{where}: train.stage_select gms needs eval.is_weights (GMS is "
                              "sqrt(FID / IS)); set it or select by kid")
        if not train.halve_d_loss and train.gan_loss in UNHALVED_D_LOSSES:
            raise ConfigError(f"{where}: train.halve_d_loss false undoes the 0.5 of D's loss, "
                              f"but gan_loss {train.gan_loss} has none; keep it true")
        stages = (train.stage_batch_sizes, train.stage_epochs, train.stage_eval_every)
        if len({len(s) for s in stages}) != 1:
            raise ConfigError(f"{where}: train.stage_batch_sizes, stage_epochs and "
                              f"stage_eval_every need one entry per stage (got "
                              f"{', '.join(str(len(s)) for s in stages)})")
        for batch in (train.batch_size, *train.stage_batch_sizes):
            if batch % train.gpus:
                raise ConfigError(f"{where}: train.batch_size {batch} must be a multiple of "
                                  f"train.gpus {train.gpus} (each rank trains on its share)")
        _check_training_size(cfg.data, model, train, where)
    _check_training_size(cfg.data, cfg.model, cfg.train)  # what pretrain_ae trains on


def _check_training_size(data: DataConfig, model: ModelConfig, train: TrainConfig,
                         where: str = "") -> None:
    """The networks, built for ``data.image_size``, must take the size they train on
    (:func:`training_size`); ``where`` names the variant ('' = the top-level keys)."""
    prefix = f"{where}: " if where else ""
    load = train.load_size or data.image_size
    if train.crop_size > load:
        raise ConfigError(f"{prefix}train.crop_size {train.crop_size} is larger than the load "
                          f"size {load}")
    size, key = training_size(data, train)
    if size == data.image_size:
        return  # checked with the networks (_check_shapes)
    if model.generator == "unet":
        depth = unet_depth(data.image_size)
        why = f"the U-Net built for data.image_size {data.image_size} halves it {depth} times"
    else:
        depth = model.n_downsampling
        why = f"model.n_downsampling {depth}"
    if size % 2 ** depth:
        raise ConfigError(f"{prefix}{key} {size} (the side the networks train on) must be a "
                          f"multiple of {2 ** depth} ({why}); change {key} or "
                          f"data.image_size")
    try:
        _check_discriminator(model, size, "model", key)
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None


def _check_dataset(cfg: Config) -> None:
    """``data.dataset`` names a catalogue entry unless ``data.source`` says where the files are
    (then it is only a label): checked here, before a stage opens a run or writes anything."""
    from cyclelab.catalogue import lookup

    if not cfg.data.source:
        lookup(cfg.data.dataset)
