"""The dataset catalogue: ``data.dataset`` name -> where the files are, how to build, licence.

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
              licence: str = CYCLEGAN_LICENCE) -> DatasetEntry:
    archive = f"{name}.zip"
    return DatasetEntry(name=name, kind="archive", description=description, licence=licence,
                        files=(RemoteFile(archive, (CYCLEGAN_BASE + archive,)),), layout=layout)


def _mnist_files(kind: str = "images-idx3") -> tuple[RemoteFile, ...]:
    names = (f"train-{kind}-ubyte.gz", f"t10k-{kind}-ubyte.gz")
    return tuple(RemoteFile(n, tuple(base + n for base in MNIST_BASES)) for n in names)


MNIST_LICENCE = "MNIST (LeCun, Cortes, Burges): CC BY-SA 3.0"
SVHN_LICENCE = "SVHN (Netzer et al., 2011): non-commercial use only, cite the paper"
ASTRONAUT_NOTE = "backgrounds: NASA astronaut photo shipped by scikit-image (public domain)"
KAGGLE_NOTE = "Kaggle dataset: accept its licence on its Kaggle page; redistribution may be barred"

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
              licence=CYCLEGAN_LICENCE + "; map tiles from Google Maps"),
    _cyclegan("facades", "CMP facade photos <-> architectural labels",
              licence=CYCLEGAN_LICENCE + "; CMP Facade Database (Tylecek and Sara, 2013)"),
    _cyclegan("iphone2dslr_flower", "Flickr flower photos: iPhone (A) <-> DSLR (B)"),
    _cyclegan("mini", "a few images, for smoke tests"),
    _cyclegan("mini_pix2pix", "a few aligned A|B pairs (pix2pix), split into halves",
              layout="aligned"),
    _cyclegan("mini_colorization", "a few colour photos: greyscale (A) <-> colour (B)",
              layout="colorization"),
    DatasetEntry(
        name="cityscapes", kind="cityscapes",
        description="Cityscapes street photos (A) <-> colour label maps (B), seeds/002",
        licence="Cityscapes licence: non-commercial, login required, no redistribution "
                "(https://www.cityscapes-dataset.com)",
        files=(RemoteFile("gtFine_trainvaltest.zip", ()),
               RemoteFile("leftImg8bit_trainvaltest.zip", ())),
        needs_source=True,
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


__all__ = ["MIRROR_ENV", "RemoteFile", "DatasetEntry", "CATALOGUE", "lookup", "locations",
           "mirror_location"]
