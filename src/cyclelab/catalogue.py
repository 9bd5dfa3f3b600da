"""The dataset catalogue: ``data.dataset`` name -> where the files are, how to build, licence,
and the facts the scores need (which test images come in pairs, a label map's palette).

Each entry names a builder ``kind`` (a key of ``cyclelab.data.sources.BUILDERS``) and the
files it needs. ``CYCLELAB_MIRROR`` (a URL, ``file://`` URL or folder) replaces every base URL:
a file ``apple2orange.zip`` is then fetched from ``$CYCLELAB_MIRROR/apple2orange.zip``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from cyclelab.errors import ConfigError

MIRROR_ENV = "CYCLELAB_MIRROR"
CYCLEGAN_BASE = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/"
# The ossci mirror is the one torchvision uses; the original site often refuses scripts.
MNIST_BASES = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/")
SVHN_BASE = "http://ufldl.stanford.edu/housenumbers/"

CYCLEGAN_LICENCE = ("CycleGAN release (Zhu et al., ICCV 2017); images from ImageNet, Flickr, "
                    "WikiArt and others: research use only, cite the paper")


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name, the URLs tried in order, an optional pinned sha256."""

    name: str
    urls: tuple[str, ...]
    sha256: str = ""


Colour = tuple[int, int, int]


@dataclass(frozen=True)
class Palette:
    """The colours of a domain whose images are label maps (segmentation scores): its
    evaluation classes in class-index order, then the void colours (no class)."""

    domain: str
    classes: tuple[tuple[str, Colour], ...]
    void: tuple[Colour, ...] = ()


@dataclass(frozen=True)
class DatasetEntry:
    """One catalogue entry. ``layout`` tells the archive builders how the files are arranged."""

    name: str
    kind: str
    description: str
    licence: str
    files: tuple[RemoteFile, ...] = ()
    layout: str = "unaligned"
    kaggle: tuple[str, ...] = ()
    # Files the user must fetch themselves (licence with login): data.source names their folder.
    needs_source: bool = False
    # Class labels, fetched when available (semantic scores); the images do not need them.
    label_files: tuple[RemoteFile, ...] = ()
    # Test images in pairs (the same scene in A and B; paired scores): the prepared file
    # stems match once one of these per-domain suffixes is dropped (``()``: equal stems).
    # None: unpaired.
    pair_suffixes: tuple[str, ...] | None = None
    # The label-map domain's colours, when one domain is label maps (segmentation scores).
    palette: Palette | None = None

    def file(self, name: str) -> RemoteFile:
        """The remote file called ``name``."""
        for remote in self.files:
            if remote.name == name:
                return remote
        raise KeyError(f"{self.name} has no file {name!r}")


def mirror_location(mirror: str, name: str) -> str:
    """``name`` inside the mirror (an http(s) or file:// URL, or a folder)."""
    if urlparse(mirror).scheme in ("http", "https", "file"):
        return mirror.rstrip("/") + "/" + name
    return str(Path(mirror).expanduser() / name)


def locations(remote: RemoteFile, mirror: str = "") -> tuple[str, ...]:
    """Where to look for ``remote``: the mirror alone when one is set, else its URLs."""
    if mirror:
        return (mirror_location(mirror, remote.name),)
    return remote.urls


def _cyclegan(name: str, description: str, layout: str = "unaligned",
              licence: str = CYCLEGAN_LICENCE,
              pair_suffixes: tuple[str, ...] | None = None) -> DatasetEntry:
    archive = f"{name}.zip"
    return DatasetEntry(name=name, kind="archive", description=description, licence=licence,
                        files=(RemoteFile(archive, (CYCLEGAN_BASE + archive,)),), layout=layout,
                        pair_suffixes=pair_suffixes)


def _mnist_files(kind: str = "images-idx3") -> tuple[RemoteFile, ...]:
    names = (f"train-{kind}-ubyte.gz", f"t10k-{kind}-ubyte.gz")
    return tuple(RemoteFile(n, tuple(base + n for base in MNIST_BASES)) for n in names)


MNIST_LICENCE = "MNIST (LeCun, Cortes, Burges): CC BY-SA 3.0"
SVHN_LICENCE = "SVHN (Netzer et al., 2011): non-commercial use only, cite the paper"
ASTRONAUT_NOTE = "backgrounds: NASA astronaut photo shipped by scikit-image (public domain)"
KAGGLE_NOTE = "Kaggle dataset: accept its licence on its Kaggle page; redistribution may be barred"

# Cityscapes colours (cityscapesScripts labels.py): the 19 evaluation classes in trainId order,
# then the void classes' colours. A pixel nearest to a void colour is no class: ignored in the
# ground truth, a wrong answer in a translation.
CITYSCAPES_PALETTE = Palette(
    domain="B",
    classes=(
        ("road", (128, 64, 128)), ("sidewalk", (244, 35, 232)), ("building", (70, 70, 70)),
        ("wall", (102, 102, 156)), ("fence", (190, 153, 153)), ("pole", (153, 153, 153)),
        ("traffic light", (250, 170, 30)), ("traffic sign", (220, 220, 0)),
        ("vegetation", (107, 142, 35)), ("terrain", (152, 251, 152)), ("sky", (70, 130, 180)),
        ("person", (220, 20, 60)), ("rider", (255, 0, 0)), ("car", (0, 0, 142)),
        ("truck", (0, 0, 70)), ("bus", (0, 60, 100)), ("train", (0, 80, 100)),
        ("motorcycle", (0, 0, 230)), ("bicycle", (119, 11, 32)),
    ),
    void=((0, 0, 0), (111, 74, 0), (81, 0, 81), (250, 170, 160), (230, 150, 140),
          (180, 165, 180), (150, 100, 100), (150, 120, 90), (0, 0, 90), (0, 0, 110)),
)

_ENTRIES = (
    _cyclegan("ae_photos", "photographs of the CycleGAN release"),
    _cyclegan("apple2orange", "ImageNet apples (A) <-> oranges (B)"),
    _cyclegan("summer2winter_yosemite", "Flickr Yosemite in summer (A) <-> winter (B)"),
    _cyclegan("horse2zebra", "ImageNet horses (A) <-> zebras (B)"),
    _cyclegan("monet2photo", "Monet paintings (A) <-> landscape photos (B)"),
    _cyclegan("cezanne2photo", "Cezanne paintings (A) <-> landscape photos (B)"),
    _cyclegan("ukiyoe2photo", "Ukiyo-e prints (A) <-> landscape photos (B)"),
    _cyclegan("vangogh2photo", "Van Gogh paintings (A) <-> landscape photos (B)"),
    _cyclegan("maps", "aerial photos (A) <-> Google maps (B)",
              licence=CYCLEGAN_LICENCE + "; map tiles from Google Maps",
              pair_suffixes=("_A", "_B")),  # 1_A.jpg <-> 1_B.jpg
    _cyclegan("facades", "CMP facade photos <-> architectural labels",
              licence=CYCLEGAN_LICENCE + "; CMP Facade Database (Tylecek and Sara, 2013)",
              pair_suffixes=("_A", "_B")),
    _cyclegan("iphone2dslr_flower", "Flickr flower photos: iPhone (A) <-> DSLR (B)"),
    _cyclegan("mini", "a few images, for smoke tests"),
    _cyclegan("mini_pix2pix", "a few aligned A|B pairs (pix2pix), split into halves",
              layout="aligned", pair_suffixes=()),
    _cyclegan("mini_colorization", "a few colour photos: greyscale (A) <-> colour (B)",
              layout="colorization", pair_suffixes=()),
    DatasetEntry(
        name="cityscapes", kind="cityscapes",
        description="Cityscapes street photos (A) <-> colour label maps (B), seeds/002",
        licence="Cityscapes licence: non-commercial, login required, no redistribution "
                "(https://www.cityscapes-dataset.com)",
        files=(RemoteFile("gtFine_trainvaltest.zip", ()),
               RemoteFile("leftImg8bit_trainvaltest.zip", ())),
        needs_source=True,
        # Photo x_leftImg8bit.png <-> colour label map x_gtFine_color.png.
        pair_suffixes=("_leftImg8bit", "_gtFine_color"), palette=CITYSCAPES_PALETTE,
    ),
    DatasetEntry(
        name="mnist2colored_mnist", kind="mnist_colored",
        description="MNIST digits (A) <-> digits inverted over photo crops (B), seeds/003",
        licence=f"{MNIST_LICENCE}; {ASTRONAUT_NOTE}", files=_mnist_files(),
        label_files=_mnist_files("labels-idx1"),
    ),
    DatasetEntry(
        name="mnist2svhn", kind="mnist_svhn",
        description="MNIST digits (A) <-> SVHN cropped house numbers (B), seeds/003",
        licence=f"{MNIST_LICENCE}; {SVHN_LICENCE}",
        files=_mnist_files() + tuple(RemoteFile(n, (SVHN_BASE + n,))
                                     for n in ("train_32x32.mat", "test_32x32.mat")),
        label_files=_mnist_files("labels-idx1"),  # SVHN's labels are inside its .mat files
    ),
    DatasetEntry(
        name="selfie2anime", kind="kaggle",
        description="selfies (A) <-> anime faces (B) (U-GAT-IT data), seeds/004 task 1",
        licence=KAGGLE_NOTE, kaggle=("arnaud58/selfie2anime",),
    ),
    DatasetEntry(
        name="animals2pokemon", kind="kaggle",
        description="animal photos, 90 classes (A) <-> Pokemon sprites (B), seeds/004 task 2",
        licence=KAGGLE_NOTE,
        kaggle=("iamsouravbanerjee/animal-image-dataset-90-different-animals",
                "yehongjiang/pokemon-sprites-images"),
        layout="two_datasets",
    ),
    DatasetEntry(
        name="digits", kind="digits",
        description="embedded MNIST-like digits (A) <-> coloured, dark-outlined digits on "
                    "pale two-colour gradients (B), generated offline",
        licence="generated from the DejaVu fonts matplotlib ships (Bitstream Vera licence)",
    ),
)

CATALOGUE: dict[str, DatasetEntry] = {entry.name: entry for entry in _ENTRIES}


def lookup(name: str) -> DatasetEntry:
    """The entry called ``name``; ConfigError listing the catalogue otherwise."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ConfigError(
            f"data.dataset: unknown dataset {name!r}; the catalogue has {', '.join(CATALOGUE)}; "
            "or set data.source to a folder, archive or URL"
        ) from None


__all__ = ["MIRROR_ENV", "RemoteFile", "Palette", "DatasetEntry", "CITYSCAPES_PALETTE",
           "CATALOGUE", "lookup", "locations", "mirror_location"]
