"""The networks' size rules, in arithmetic only (no torch): the networks are built from them and
the params schema checks a configuration against them before any stage opens a run.

- The U-Net halves its input :func:`unet_depth` times.
- Each discriminator accepts images of at least :func:`smallest_input` pixels.
"""

from __future__ import annotations


def unet_depth(image_size: int) -> int:
    """How many times the U-Net halves ``image_size``: down to 1 px for powers of two, at most
    8 (``unet_256``); any size divisible by 4 works (a 48-px image stops at 3x3)."""
    depth = 0
    while depth < 8 and image_size % 2 ** (depth + 1) == 0:
        depth += 1
    return depth


def smallest_input(discriminator: str, n_layers: int) -> int:
    """The smallest image side ``discriminator`` accepts with ``n_layers`` (``model.n_layers_d``).

    patch: ``n_layers`` stride-2 4x4 convolutions, then two 4x4 stride-1 ones (-1 px each), so
    3 * 2**n; seed001, dual_head and plain: ``n_layers + 1`` stride-2 convolutions, and instance
    norm needs a map of at least 2x2 after them, so 2**(n + 2); pixel: 1x1 convolutions, any
    size; random_crop: its ``d_crop`` window (checked against the image, not here)."""
    if discriminator == "patch":
        return 3 * 2 ** n_layers
    if discriminator in ("seed001", "dual_head", "plain"):
        return 2 ** (n_layers + 2)
    return 1


def crop_layers(crop: int, n_layers: int) -> int:
    """The PatchGAN depth that fits a ``crop``-pixel window (the random-crop discriminator): at
    most ``n_layers``, and the deepest stack whose :func:`smallest_input` fits the window (seed
    003's 8x8 and 9x9 crops give one layer)."""
    depth = max(1, n_layers)
    while depth > 1 and smallest_input("patch", depth) > crop:
        depth -= 1
    return depth
