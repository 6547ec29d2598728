"""Fault injection for crash tests: ``fault("build.after_store")`` kills the process on the spot
(like ``kill -9``: no cleanup, no ``finally``) when the environment variable ``TIEIN_FAULT``
names that point. Imports nothing of tiein, so every layer may call it.

Every point is listed in :data:`POINTS` (a test runs a command once per point and checks that
the home is whole afterwards); naming an unknown point is a programming error.

>>> fault("build.after_stage")  # TIEIN_FAULT unset: does nothing
>>> "build.after_stage" in POINTS
True
"""

from __future__ import annotations

import os

# point -> where it is (kept in the order the steps run)
POINTS: dict[str, str] = {
    "store.building": "embedded store: a new generation's folder made, its database not yet loaded",
    "store.staged": "embedded store: a new generation's first tables loaded beside the build's last steps",
    "build.after_stage": "index and inputs of the new generation written, not renamed in",
    "build.before_store": "generation complete on disk, the store still answers the old graph",
    "store.before_switch": "embedded store: new generation built, its CURRENT not yet replaced",
    "store.after_switch": "embedded store: CURRENT replaced, old generations not yet removed",
    "build.after_store": "the store answers the new graph, the home pointer still names the old one",
    "home.after_pointer": "home pointer switched (build, update, rollback), old generations not yet removed",
    "update.after_stage": "update: new generation staged, not renamed in",
    "update.after_store": "update: store changed, home pointer not yet switched",
    "rollback.after_store": "rollback: store holds the previous graph, home pointer not yet switched",
    "feedback.after_merge": "feedback compaction: merged part renamed in, old parts not yet removed",
    "feedback.mid_delete": "feedback compaction: some old parts removed, others not",
}
ENV = "TIEIN_FAULT"
EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL


def fault(point: str) -> None:
    """Die at once, without cleanup, if ``TIEIN_FAULT`` names ``point``."""
    if point not in POINTS:
        raise ValueError(f"unknown fault point {point!r}")
    if os.environ.get(ENV) == point:
        os._exit(EXIT_CODE)
