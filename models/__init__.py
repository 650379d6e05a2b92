"""Shipped model bundles, installed with alsseg as the package ``alsseg.bundles``.

Each sub-folder is a MONAI-style bundle (``configs/metadata.json``, ``models/model.pt``,
``docs/README.md``). Nothing here is code: this file only makes the folder installable, so a
wheel or a non-editable install finds the shipped model without the source tree.
"""

from pathlib import Path

#: the folder that holds the shipped bundles, wherever alsseg is installed.
SHIPPED_DIR = Path(__file__).resolve().parent
