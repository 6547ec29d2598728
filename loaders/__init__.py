"""Loaders: real catalog, order and browsing files in, the Arrow tables of :mod:`tiein.model` out.

    load_dataset("online_retail")                       # a ready dataset from the shared data
    load_files(catalog=..., orders=..., mapping=Mapping.from_cli(["product_id=sku"]))

See :mod:`tiein.loaders.read` (formats, encodings, row numbering), :mod:`tiein.loaders.mapping` (the
mapping), :mod:`tiein.loaders.build` (cleaning rules) and :mod:`tiein.loaders.datasets` (ready datasets).
"""

from tiein.loaders.datasets import DATASETS, default_data_dir, load_dataset
from tiein.loaders.load import Loaded, load_files
from tiein.loaders.mapping import CatalogColumns, Mapping, Options, OrderColumns, ViewColumns
from tiein.loaders.report import LoadReport

__all__ = [
    "DATASETS",
    "CatalogColumns",
    "LoadReport",
    "Loaded",
    "Mapping",
    "Options",
    "OrderColumns",
    "ViewColumns",
    "default_data_dir",
    "load_dataset",
    "load_files",
]
