"""The Spark session for pair mining: pyspark imported on demand (with an install hint), a local or
configured session, and :func:`session_for`: the active session or one for the length of a block."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiein.errors import ConfigError, MissingDependency

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


Progress = Callable[[str, int, int], None]
ParquetSource = str | Path | Sequence[str | Path]

_DAY_US = 86_400_000_000
JAVA_HINT = (
    "install a Java 17+ runtime (Debian/Ubuntu: apt-get install default-jre-headless) or set JAVA_HOME"
)


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError as exc:
        raise MissingDependency("pyspark", "spark") from exc
    return pyspark


def spark_session(
    master: str | None = None,
    *,
    threads: int | None = None,
    shuffle_partitions: int | None = None,
    driver_memory: str | None = None,
    app_name: str = "tiein-mining",
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """A Spark session for mining (or the active one: Spark allows one per process).

    ``master`` defaults to env ``TIEIN_SPARK_MASTER``, else ``local[threads]`` (threads default
    ``min(4, CPUs)``); under ``spark-submit`` the master of the submit command is kept. Local
    sessions get the web UI off, ``2 * threads`` shuffle partitions (unless given) and
    ``driver_memory`` (env ``TIEIN_SPARK_DRIVER_MEMORY``, default ``4g``: in local mode the whole
    job runs in the driver's JVM) and this Python for the Python workers (env ``PYSPARK_PYTHON``
    wins). ``conf`` adds Spark settings. Logs are cut to errors. Raises :class:`MissingDependency` when
    pyspark or Java is missing.
    """
    _pyspark()
    from pyspark.errors import PySparkException
    from pyspark.sql import SparkSession

    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # driver started by spark-submit
    if not submitted and not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise MissingDependency("java", "spark", hint=JAVA_HINT)
    workers = threads if threads is not None else min(4, os.cpu_count() or 1)
    if workers < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    master = master or os.environ.get("TIEIN_SPARK_MASTER") or (None if submitted else f"local[{workers}]")
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    if master is not None and master.startswith("local"):
        memory = driver_memory or os.environ.get("TIEIN_SPARK_DRIVER_MEMORY", "4g")
        builder = (
            builder.config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(shuffle_partitions or 2 * workers))
            .config("spark.driver.memory", memory)
        )
        # the Python workers (relations classified on Spark, tiein.spark_classify) run this
        # interpreter, which has tiein's packages; pyspark reads the variable when the context starts
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    elif shuffle_partitions is not None:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except PySparkException as exc:
        raise MissingDependency("java", "spark", hint=f"{JAVA_HINT} (Spark could not start: {exc})") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextmanager
def session_for(threads: int | None = None) -> Iterator[SparkSession]:
    """The active Spark session, else a new one from :func:`spark_session` that is stopped on exit
    (a build keeps one session from mining to classification)."""
    _pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    spark = active or spark_session(threads=threads)
    try:
        yield spark
    finally:
        if active is None:
            spark.stop()
