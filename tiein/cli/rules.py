"""`tiein rules`: the merchant's hand-set relations (pin / block / boost), kept beside the graph so
every rebuild and update keeps them (:mod:`tiein.rules`; the API's ``/v1/rules``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tiein.cli.base import _open_store, cli, json_option, where_options


@cli.group()
def rules() -> None:
    """Merchant rules: pin, block or boost a pair by hand (kept through every rebuild).

    \b
    tiein rules import rules.xlsx       # CSV / XLSX / YAML: anchor, item, kind, action, position, …
    tiein rules list                    # every rule, with its id and whether it is in force now
    tiein rules remove 3 7              # by id; or --anchor tent [--item stove]; or --all
    """


@rules.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="The file becomes the whole rule set (the other rules go).")
@where_options
@json_option()
def rules_import(file: Path, replace: bool, home: str | None, store: str | None, as_json: bool) -> None:
    """Add the rules of FILE (CSV, XLSX or YAML; columns anchor, item, kind, action pin/block/boost,
    position, boost, valid_from, valid_to, note, or 主商品, 推荐商品, 关系, 动作, 位置, 权重,
    开始时间, 结束时间, 备注). A rule for the same anchor, item and kind replaces the old one."""
    from tiein.rules import import_rules, read_rules_file

    found = read_rules_file(file)
    st = _open_store(home, store)
    try:
        result = import_rules(st, found, replace=replace)
    finally:
        st.close()
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    click.echo(
        f"{file.name}: {len(found)} rules read — {result['added']} added, {result['updated']} changed, "
        f"{result['removed']} removed; {result['count']} rules now (version {result['version']})"
    )


@rules.command("list")
@click.option("--anchor", help="Only the rules of this anchor (and those for every anchor, '*').")
@where_options
@json_option()
def rules_list(anchor: str | None, home: str | None, store: str | None, as_json: bool) -> None:
    """The merchant's rules, with their ids (for `tiein rules remove`) and whether each is in
    force now."""
    from tiein.rules import rules_payload

    st = _open_store(home, store)
    try:
        payload = rules_payload(st, anchor=anchor)
    finally:
        st.close()
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    click.echo(f"{payload['count']} rules, {payload['active']} in force (version {payload['version']})")
    for r in payload["rules"]:
        extra = []
        if r["position"] is not None:
            extra.append(f"position {r['position']}")
        if r["boost"] is not None:
            extra.append(f"×{r['boost']:g}")
        if r["valid_from"] or r["valid_to"]:
            extra.append(f"{r['valid_from'] or '…'} → {r['valid_to'] or '…'}")
        if not r["active"]:
            extra.append("not in force now")
        note = f"  # {r['note']}" if r["note"] else ""
        detail = f" ({', '.join(extra)})" if extra else ""
        click.echo(
            f"  {r['rule_id']:>4}  {r['action']:<5} {r['anchor']} → {r['item']}  [{r['kind'] or 'every kind'}]{detail}{note}"
        )


@rules.command("remove")
@click.argument("ids", nargs=-1, type=int)
@click.option("--anchor", help="Remove the rules of this anchor.")
@click.option("--item", help="Remove the rules about this item (with --anchor: that pair).")
@click.option("--all", "remove_all", is_flag=True, help="Remove every rule.")
@where_options
@json_option()
def rules_remove(
    ids: tuple[int, ...],
    anchor: str | None,
    item: str | None,
    remove_all: bool,
    home: str | None,
    store: str | None,
    as_json: bool,
) -> None:
    """Remove rules by IDS (see `tiein rules list`), by --anchor / --item, or --all."""
    from tiein.rules import remove_rules

    st = _open_store(home, store)
    try:
        result = remove_rules(st, ids=ids, anchor=anchor, item=item, remove_all=remove_all)
    finally:
        st.close()
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    click.echo(f"removed {result['removed']} rules; {result['count']} left (version {result['version']})")
