"""The output of bench/mining.py: the peers in table order, seconds and line counts as the tables
write them (and ``--sizes`` parsing), the aligned tables and the summary of a ``--sizes`` run (a
row per size: seconds per engine, peer / tiein, identical checks, the floor ratios)."""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

PEERS = ("duckdb-sql", "scipy", "polars", "floor", "mlxtend", "spark-local")
BIG_SIZE = 16_000_000  # sets this large get one run per engine


def sec(x: float) -> str:
    """Seconds for a table: three decimals under one second, else two."""
    return f"{x:.3f}" if x < 1 else f"{x:.2f}"


def print_table(head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def size_label(n: int) -> str:
    """1000000 -> '1M', 40000 -> '40k', else the number."""
    for unit, name in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if n >= unit and n % unit == 0:
            return f"{n // unit}{name}"
    return str(n)


def parse_sizes(text: str) -> list[int]:
    """'1M,4M,16M,40M' or '200000,1.5M,40k' -> line counts."""
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", part.replace("_", ""))
        if m is None:
            raise argparse.ArgumentTypeError(f"not a line count: {part!r} (use e.g. 1M,4M or 200000)")
        value = int(
            round(float(m.group(1)) * {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[m.group(2).lower()])
        )
        if value < 1:
            raise argparse.ArgumentTypeError(f"not a line count: {part!r}")
        out.append(value)
    return out


def summary(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """One row per size: seconds per engine, peer / tiein, identical, the floor ratios."""
    peers = [e for e in PEERS if e in args.engines and e != "floor"]
    head = ["size", "lines", "pairs", "tiein s", "tiein pairs step s"]
    for e in peers:
        head += [f"{e} s", f"{e}/tiein", f"{e} identical"]
    with_floor = "floor" in args.engines
    if with_floor:
        head += [
            "floor count only s",
            "floor incl. encoding s",
            "tiein/floor incl. enc",
            "pairs step/floor count",
            "floor identical",
        ]
    head.append("tiein fastest")
    rows = []
    fastest_all, within_2x, ratios = True, True, []
    for r in results:
        label = size_label(r["lines"])
        if "tiein" not in r:
            rows.append([label, f"{r['lines']:,}", "-", "n/a", *["-"] * (len(head) - 4)])
            fastest_all = within_2x = False
            continue
        row = [label, f"{r['lines']:,}", f"{r['pairs']:,}", sec(r["tiein"]), sec(r["pairs_step"])]
        fastest = True
        for e in peers:
            got = r["engines"].get(e, {})
            if got.get("seconds") is None:
                row += ["n/a", "-", "-"]
                fastest = False if e in ("duckdb-sql", "scipy", "polars") else fastest
                continue
            secs = got["seconds"]
            fastest &= r["tiein"] < secs
            row += [sec(secs), f"{secs / r['tiein']:.2f}", "yes" if got["same"] else "no"]
        if with_floor:
            got = r["engines"].get("floor", {})
            if got.get("seconds") is None:
                row += ["n/a", "n/a", "-", "-", "-"]
                within_2x = False
            else:
                ratio = r["pairs_step"] / got["count"]
                ratios.append(ratio)
                within_2x &= ratio <= 2.0
                row += [
                    sec(got["count"]),
                    sec(got["seconds"]),
                    f"{r['tiein'] / got['seconds']:.2f}",
                    f"{ratio:.2f}",
                    "yes" if got["same"] else "no",
                ]
        row.append("yes" if fastest else "no")
        fastest_all &= fastest
        rows.append(row)
    print(
        f"\n== summary: {os.cpu_count()} CPUs; best wall seconds of {args.repeat} run(s) per engine "
        f"(one run at {size_label(BIG_SIZE)} lines and more), one process; peer/tiein = peer s / tiein s"
    )
    print_table(head, rows)
    notes = [n for r in results for n in r["notes"]]
    for n in notes:
        print(f"note: {n}")
    print(f"tiein fastest at every size: {'yes' if fastest_all else 'no'}")
    if with_floor and ratios:
        print(
            f"tiein pairs step within 2x of the floor's count at every size: {'yes' if within_2x else 'no'} "
            f"(pairs step / floor count only: {', '.join(f'{x:.2f}' for x in ratios)})"
        )
