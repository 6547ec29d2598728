"""What a build is made from and how: :class:`BuildOptions` with every default in one place, and
where the home and the store are by default."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiein.checks import Floors
from tiein.features import RoleConfig
from tiein.model import MINING
from tiein.next_purchase import NextConfig
from tiein.ranker import RankerConfig
from tiein.relations import RelationConfig
from tiein.season import SeasonConfig
from tiein.segments import SegmentConfig
from tiein.type_fallback import TypeFallbackConfig

Progress = Callable[[str, int, int], None]


def default_home() -> Path:
    return Path(os.environ.get("TIEIN_HOME", "tiein-data"))


def default_store_url(home: Path) -> str:
    return os.environ.get("TIEIN_STORE") or str(home / "graph")


@dataclass
class BuildOptions:
    """What to build from and how. Either ``dataset`` (a ready mapping from loaders.DATASETS) or
    files (``catalog``/``orders``/``views`` with an optional column ``mapping``)."""

    dataset: str | None = None
    data_dir: Path | None = None
    catalog: Path | None = None
    orders: Path | None = None
    views: Path | None = None
    pairs: Path | None = None  # listed pairs: curated complements/substitutes (tiein.loaders.pairs)
    sets: Path | None = None  # content sets: videos, livestreams, outfits (tiein.loaders.sets)
    mapping: Any = None  # loaders.Mapping
    home: Path = field(default_factory=default_home)
    store_url: str | None = None
    model: str | None = None  # None = embeddings.DEFAULT_MODEL
    embeddings: bool = True
    neighbours_k: int = 20
    candidates_per_product: int = 60
    # candidate pairs featured and classified at a time: a shop with more (estimated) is
    # classified in buckets of anchors (tiein.classify_buckets; same relations, bounded memory)
    classify_rows: int = 8_000_000
    graph_pairs_per_product: int = 50
    min_count: int = MINING.min_count
    max_basket: int = MINING.max_basket
    after_window_days: int | None = MINING.after_window_days
    threads: int | None = None
    # bytes this build's process may hold (None: TIEIN_MEMORY_BUDGET's, or none): the store's
    # load keeps within it (tiein.sysmem); the summary reports the peak against it
    memory_budget: int | None = None
    mining: str = "numpy"  # pair-mining backend, one of MINING_BACKENDS ("spark": tiein.spark_mining)
    relations: RelationConfig = field(default_factory=RelationConfig)
    # complement scores learnt from the shop's own baskets (tiein.ranker); too small a shop keeps
    # the hand-set score
    ranker: RankerConfig = field(default_factory=RankerConfig)
    # "next purchase" relations from customer timelines (window: after_window_days); a pair also
    # needs min_count customers to survive mining, so the effective minimum is the larger one
    next_purchase: NextConfig = field(default_factory=NextConfig)
    roles: RoleConfig = field(default_factory=RoleConfig)  # product sales roles
    # complements at the product-type level for products with none of their own (tiein.type_fallback)
    type_fallback: TypeFallbackConfig = field(default_factory=TypeFallbackConfig)
    scenes: Path | None = None  # user scenes file (tiein.scenes.load_scenes); wins over discovery
    discover_scenes: bool = True  # without a scenes file: discover scenes from complements
    max_scenes: int = 12
    floors: Floors = field(default_factory=Floors)  # what the build must reach to replace the graph
    # season evidence per relation: month windows, or named windows of a calendar (tiein.season)
    season: SeasonConfig = field(default_factory=SeasonConfig)
    # relations per customer segment when the orders name one (--map segment=COLUMN; tiein.segments)
    segments: SegmentConfig = field(default_factory=SegmentConfig)


DISCOVERED_SCENES_FILE = "scenes.discovered.yaml"
MINING_BACKENDS = ("numpy", "spark")
