"""Builders: from a catalogue entry or a ``data.source`` to ``{trainA,trainB,testA,testB}/``.

A builder fetches what its entry names (through the verified cache of :mod:`cyclelab.data.fetch`),
unpacks it safely (:mod:`cyclelab.data.extract`) and arranges the files into the four split
folders of the temporary output folder. Builders are looked up by the entry's ``kind``
(``BUILDERS``), one module per family: :mod:`.archive` (official CycleGAN zips),
:mod:`.cityscapes`, :mod:`.mnist` (MNIST <-> coloured MNIST, MNIST <-> SVHN, file formats in
:mod:`.formats`), :mod:`.kaggle` and :mod:`.generated` (the embedded digits). Archive layouts
are looked up by name (:data:`~.layouts.LAYOUTS`); user sources by what ``data.source`` points
at (:mod:`.user`). :mod:`.context` holds what every builder shares.
"""

from __future__ import annotations

from collections.abc import Callable

from cyclelab.catalogue import DatasetEntry
from cyclelab.data.extract import IMAGE_SUFFIXES
from cyclelab.data.sources.archive import build_archive
from cyclelab.data.sources.cityscapes import build_cityscapes
from cyclelab.data.sources.context import BuildContext, Built, fetch_remote
from cyclelab.data.sources.formats import (
    read_idx_images,
    read_idx_labels,
    read_svhn_labels,
    read_svhn_mat,
)
from cyclelab.data.sources.generated import build_digits
from cyclelab.data.sources.kaggle import build_kaggle, kaggle_api, kaggle_download
from cyclelab.data.sources.layouts import (
    LAYOUTS,
    arrange_aligned,
    arrange_auto,
    arrange_colorization,
    arrange_unaligned,
    descend,
    split_two_folders,
)
from cyclelab.data.sources.mnist import build_mnist_colored, build_mnist_svhn, colorize_digit
from cyclelab.data.sources.user import SOURCE_KINDS, build_from_source, source_kind
from cyclelab.paths import SPLITS

Builder = Callable[[DatasetEntry, BuildContext], Built]
BUILDERS: dict[str, Builder] = {
    "archive": build_archive,
    "cityscapes": build_cityscapes,
    "mnist_colored": build_mnist_colored,
    "mnist_svhn": build_mnist_svhn,
    "kaggle": build_kaggle,
    "digits": build_digits,
}

__all__ = ["SPLITS", "IMAGE_SUFFIXES", "BuildContext", "Built", "LAYOUTS", "BUILDERS",
           "SOURCE_KINDS", "descend", "arrange_auto", "arrange_unaligned", "split_two_folders",
           "arrange_aligned", "arrange_colorization", "fetch_remote", "read_idx_images",
           "read_svhn_mat", "read_idx_labels", "read_svhn_labels", "colorize_digit",
           "kaggle_api", "kaggle_download", "source_kind",
           "build_from_source"]
