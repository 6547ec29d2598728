"""The feedback loop: recommendation events in, CTR / conversion out, re-ranking and A/B reports.

Events (:data:`EVENTS`) say what a shopper did with a recommendation: an ``impression`` (shown),
a ``click``, an ``add_to_cart`` or a ``purchase`` of ``item_id`` recommended for ``anchor_id`` as
a ``kind`` (complement, substitute, upsell, series, bundle, addon) on a ``surface`` (page, live,
service, …) in an ``experiment``'s ``variant``. ``value`` is the amount of the order the purchase
belongs to (``order_id`` lets several purchases of one order count it once).

    read_events(path, columns={"user_id": "会员ID"}, timezone="Asia/Shanghai")
                                        # CSV/TSV, JSON lines, Parquet, XLSX -> EVENTS (strict);
                                        # 曝光/点击/加购/购买 accepted; zone-less times in the shop's zone
    ingest(home, table)                 # append to HOME/feedback/events/ (idempotent)
    ingest_records(home, records)       # the same for a POST body (list of JSON objects)
    feedback_stats(read_log(home))      # per (anchor, item, kind), per item and per kind, smoothed
    rerank(rows, stats, anchor_id=...)  # Thompson sampling, priors from score and item level
    assign(user_id, "exp-1")            # deterministic A/B variant
    ab_report(events, experiment=...)   # verdict (p-value, sample size needed), sample-ratio check,
                                        # conversion, add-on rate, AOV, lifts with 95 % CIs, daily trend
    write_report(report, out, lang="both")  # report.json / .png (CJK font: tiein.feedback.fonts) / .html

**Log.** ``HOME/feedback/events/part-*.parquet``, append-only. Every event has a ``key``:
``id:<event_id>`` when the event carries an id, else ``h:<md5 of all its fields>``. An ingest
writes only events whose key the log does not hold yet, so re-ingesting a file adds nothing
(two truly identical events without ids count once: give ids to keep both). Ingests hold a lock
file, so the CLI and the API can append at the same time.

**Smoothing.** The rate of a pair (CTR = clicks / impressions, conversion = purchases /
impressions; successes are capped at the impressions) is the mean of its Beta posterior: prior
``Beta(m·p, m·(1-p))`` with ``p`` the kind's overall rate, Laplace-smoothed
(``(successes + 1) / (impressions + 2)``, so it is never 0 or 1) and ``m`` = ``prior_strength``
pseudo-impressions (default 50): ``(s + m·p) / (n + m)``. A pair with 2 impressions and 1
purchase is pulled to the kind's rate; one with 2,000 impressions keeps its own.

**Re-ranking** is Thompson sampling on per-pair Beta posteriors whose prior is calibrated by the
classifier and by the item: a row's prior mean is the kind's rate × its score / the mean score of
the rows already shown × its item factor, prior ``Beta(m·q, m·(1-q))``, and its new score is a
draw from the posterior. The **item factor** is how the item sells when recommended for the
*other* anchors (the pair's own counts left out), against the kind's rate, smoothed with
``item_strength`` pseudo-impressions (default 200; 0 turns it off):
``((S - s) + m_i·p) / ((N - n) + m_i) / p``. Most pairs are shown too rarely to learn from alone
(in the Online Retail simulation the median pair gets one impression in three months), while an
item is shown for many anchors, so what sells now lifts its pairs everywhere, including pairs
never shown. Pairs of unseen items keep the classifier's order, so new pairs are still shown where
their score puts them; a pair moves only when it (or its item) sells better or worse than its
score predicts. (A prior equal to the kind's average for every row was tried first: it lifts
unseen low-ranked pairs above shown ones after a few misses and lost sales in the simulation.)
Thompson sampling was chosen over UCB because it needs no tuning constant, works on the same Beta
posteriors the stats report, and randomises between near-equal pairs instead of always showing the
same one. ``explore`` scales the draw's spread around the posterior mean (``1`` = classic Thompson
sampling, ``0`` = greedy on the posterior mean); the random generator is seeded per request
(default: from the anchor and kind), so one request always gets the same answer.

**Confidence intervals** are 95 % normal approximations: a ratio of sums (conversion =
purchases / impressions, add-on rate = purchases / users) by the delta method over independent
units (users in reports, baskets in the simulation), so events of one user are not treated as
independent; a plain proportion of independent units (hit rate) by Wilson's interval; a lift
``b / a - 1`` by the delta method on ``log(b / a)``. Small samples (under ~30 units) make them
rough.

Modules: :mod:`tiein.loaders.events` (the EVENTS contract, reading files and request bodies),
:mod:`~tiein.feedback.log` (the log), :mod:`~tiein.feedback.stats`, :mod:`~tiein.feedback.rerank`,
:mod:`~tiein.feedback.ab` (assignment and reports).
"""

from tiein.feedback.ab import ab_report, assign, lift_ci, ratio_ci, wilson
from tiein.feedback.ab_files import write_report
from tiein.feedback.log import IngestResult, ingest, ingest_records, log_dir, log_version, read_log
from tiein.feedback.rerank import rerank, stable_hash
from tiein.feedback.stats import (
    DEFAULT_ITEM_STRENGTH,
    DEFAULT_PRIOR_STRENGTH,
    METRICS,
    Z95,
    FeedbackStats,
    events_table,
    feedback_stats,
    load_stats,
)
from tiein.loaders.events import EVENT_KINDS, EVENT_TYPES, EVENTS, read_events, records_table

__all__ = [
    "DEFAULT_ITEM_STRENGTH",
    "DEFAULT_PRIOR_STRENGTH",
    "EVENTS",
    "EVENT_KINDS",
    "EVENT_TYPES",
    "METRICS",
    "FeedbackStats",
    "IngestResult",
    "ab_report",
    "assign",
    "events_table",
    "feedback_stats",
    "ingest",
    "ingest_records",
    "lift_ci",
    "load_stats",
    "log_dir",
    "log_version",
    "ratio_ci",
    "read_events",
    "read_log",
    "records_table",
    "rerank",
    "stable_hash",
    "wilson",
    "write_report",
    "Z95",
]
