"""Scene definitions and the user's scenes file: read, validate, write back.

First step of the scene data flow: a user's YAML / JSON file (:func:`load_scenes`,
:func:`parse_scenes`) or discovered scenes become :class:`SceneDef` values (ordered
:class:`Role` s); :func:`dump_scenes` / :func:`scenes_json` write them in the same format, so a
user can review, edit and pass them back. :mod:`tiein.scenes.members` turns them into tables.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiein.errors import ConfigError

SCENE_KEYS = ("id", "name", "name_en", "name_zh", "roles")
ROLE_KEYS = ("name", "categories", "keywords", "products")
ROLE_MATCHERS = ("categories", "keywords", "products")


@dataclass(frozen=True)
class Role:
    """One role of a scene: products in ``categories`` (full paths match their subtree, other
    names match a leaf), with a title containing one of ``keywords`` (case-insensitive), or listed
    in ``products``. A product matching any of the three fills the role."""

    name: str
    categories: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    products: tuple[str, ...] = ()


@dataclass(frozen=True)
class SceneDef:
    """A scene: ``name`` (any language), optional ``name_en`` / ``name_zh``, ordered ``roles``.
    ``scene_id`` defaults to a slug of ``name_en`` (else ``name``): ``露营`` + ``camping`` →
    ``camping``."""

    name: str
    roles: tuple[Role, ...]
    name_en: str | None = None
    name_zh: str | None = None
    source: str = "user"
    id: str | None = None
    scene_id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scene_id", self.id or slug(self.name_en or self.name))


def slug(text: str) -> str:
    """A scene id from a name: lower case, runs of non-word characters as ``-`` (Chinese kept).

    >>> slug("Camping Weekend!"), slug("露营 装备")
    ('camping-weekend', '露营-装备')
    """
    return re.sub(r"[^\w]+", "-", text.strip().lower()).strip("-") or "scene"


# ----------------------------------------------------------------------------- user file
def load_scenes(path: Path | str) -> list[SceneDef]:
    """Read and validate a scenes file (YAML or JSON): a list of scenes, or ``{"scenes": [...]}``.

    Every problem found is reported at once in one ConfigError naming the file and the
    scene / role / field at fault: unknown keys, missing or empty names, a scene without roles, a
    role without any of categories / keywords / products, duplicate scene names, ids or role
    names."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ConfigError(f"scenes file {p} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read scenes file {p}: {exc}") from exc
    try:
        doc = yaml.safe_load(text)  # JSON is YAML
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML/JSON: {exc}") from exc
    return parse_scenes(doc, str(p))


def parse_scenes(doc: Any, where: str = "scenes") -> list[SceneDef]:
    """Validate already-parsed scene data (see :func:`load_scenes`); ``where`` names the source."""
    if isinstance(doc, dict) and set(doc) == {"scenes"}:
        doc = doc["scenes"]
    elif isinstance(doc, dict):
        raise ConfigError(
            f"{where}: expected a list of scenes or a mapping with only the key 'scenes', got keys {sorted(doc)}"
        )
    if not isinstance(doc, list) or not doc:
        raise ConfigError(f"{where}: expected a non-empty list of scenes")
    problems: list[str] = []
    out: list[SceneDef] = []
    names: dict[str, int] = {}
    ids: dict[str, int] = {}
    for i, raw in enumerate(doc, start=1):
        scene = _parse_scene(raw, f"scene {i}", problems)
        if scene is None:
            continue
        at = f"scene {i} ({scene.name!r})"
        key = scene.name.casefold()
        if key in names:
            problems.append(f"{at}: duplicate scene name (also scene {names[key]})")
        names.setdefault(key, i)
        if scene.scene_id in ids:
            problems.append(
                f"{at}: duplicate scene id {scene.scene_id!r} (also scene {ids[scene.scene_id]}); set 'id'"
            )
        ids.setdefault(scene.scene_id, i)
        out.append(scene)
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))
    return out


def _text(value: Any, at: str, key: str, problems: list[str], required: bool) -> str | None:
    if value is None:
        if required:
            problems.append(f"{at}: '{key}' is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
        problems.append(f"{at}: '{key}' must be a non-empty string, got {value!r}")
        return None
    return str(value).strip()


def _strings(value: Any, at: str, key: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (str, int, float)) or not str(v).strip():
            problems.append(f"{at}: '{key}' must be a string or a list of non-empty strings, got {v!r}")
            continue
        out.append(str(v).strip())
    return tuple(dict.fromkeys(out))


def _unknown(raw: dict[str, Any], allowed: tuple[str, ...], at: str, problems: list[str]) -> None:
    extra = [k for k in raw if k not in allowed]
    if extra:
        problems.append(f"{at}: unknown key(s) {', '.join(map(repr, extra))} (allowed: {', '.join(allowed)})")


def _parse_scene(raw: Any, at: str, problems: list[str]) -> SceneDef | None:
    if not isinstance(raw, dict):
        problems.append(f"{at}: expected a mapping with 'name' and 'roles', got {raw!r}")
        return None
    name = _text(raw.get("name"), at, "name", problems, required=True)
    at = f"{at} ({name!r})" if name else at
    _unknown(raw, SCENE_KEYS, at, problems)
    extras = {k: _text(raw.get(k), at, k, problems, required=False) for k in ("id", "name_en", "name_zh")}
    roles_raw = raw.get("roles")
    roles: list[Role] = []
    if not isinstance(roles_raw, list) or not roles_raw:
        problems.append(f"{at}: 'roles' must be a non-empty list")
        roles_raw = []
    seen: dict[str, int] = {}
    for j, r in enumerate(roles_raw, start=1):
        role = _parse_role(r, f"{at} role {j}", problems)
        if role is None:
            continue
        if role.name.casefold() in seen:
            problems.append(
                f"{at} role {j} ({role.name!r}): duplicate role name (also role {seen[role.name.casefold()]})"
            )
        seen.setdefault(role.name.casefold(), j)
        roles.append(role)
    if name is None or not roles:
        return None
    if extras["id"] is not None and slug(extras["id"]) != extras["id"]:
        problems.append(f"{at}: 'id' {extras['id']!r} must be a slug like {slug(extras['id'])!r}")
    return SceneDef(
        name=name, roles=tuple(roles), name_en=extras["name_en"], name_zh=extras["name_zh"], id=extras["id"]
    )


def _parse_role(raw: Any, at: str, problems: list[str]) -> Role | None:
    if isinstance(raw, str) and raw.strip():  # shorthand: "- tent" = a role matched by keyword
        return Role(name=raw.strip(), keywords=(raw.strip(),))
    if not isinstance(raw, dict):
        problems.append(f"{at}: expected a mapping with 'name' and categories/keywords/products, got {raw!r}")
        return None
    name = _text(raw.get("name"), at, "name", problems, required=True)
    at = f"{at} ({name!r})" if name else at
    _unknown(raw, ROLE_KEYS, at, problems)
    found = {k: _strings(raw.get(k), at, k, problems) for k in ROLE_MATCHERS}
    if not any(found.values()):
        problems.append(f"{at}: needs at least one of {', '.join(ROLE_MATCHERS)}")
        return None
    if name is None:
        return None
    return Role(
        name=name, categories=found["categories"], keywords=found["keywords"], products=found["products"]
    )


def dump_scenes(scenes: list[SceneDef], path: Path | str) -> Path:
    """Write ``scenes`` as a YAML file :func:`load_scenes` reads back (the same scenes), with a
    header saying how to use it. Returns the path."""
    import yaml

    p = Path(path)
    doc = {"scenes": [scene_to_dict(s) for s in scenes]}
    sources = sorted({s.source for s in scenes}) or ["user"]
    header = (
        f"# tiein scenes ({', '.join(sources)}): review, edit, then build with `tiein build ... --scenes {p.name}`.\n"
        "# Each role is filled by products in its categories (full path = subtree, else leaf name),\n"
        "# with a title containing one of its keywords, or listed in products. Roles are in order.\n"
    )
    body = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=120)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(header + body, encoding="utf-8")
    return p


def scene_to_dict(scene: SceneDef) -> dict[str, Any]:
    """One scene as the file format's mapping (empty fields left out)."""
    out: dict[str, Any] = {"name": scene.name}
    for k in ("name_en", "name_zh", "id"):
        if getattr(scene, k):
            out[k] = getattr(scene, k)
    out["roles"] = [
        {"name": r.name, **{k: list(getattr(r, k)) for k in ROLE_MATCHERS if getattr(r, k)}}
        for r in scene.roles
    ]
    return out


def scenes_json(scenes: list[SceneDef]) -> str:
    """Scene definitions as JSON (the file format), for ``--json`` output."""
    return json.dumps({"scenes": [scene_to_dict(s) for s in scenes]}, ensure_ascii=False, indent=2)
