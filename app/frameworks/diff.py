"""What changed between two framework documents: structured changes, their inverse, a summary.

A diff is a list of ``Change`` entries, one per added, removed or changed thing, each with its
before and after. Keyed collections (scale points by value, tracks, levels, areas, competencies,
activities) are matched by key, so reordering a list is not a change. A competency's expectations
and an area's emphasis are their own sections, one entry per (competency, level) or (area,
level), because that is how people read a ladder ("Senior PM now requires 4, was 3").

``apply_diff(old, diff(old, new))`` rebuilds ``new`` (up to list order); a property test holds
the module to it. Pure: documents in, plain data out.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from app.frameworks.document import FrameworkDocument

Section = Literal[
    "framework",
    "settings",
    "scale",
    "tracks",
    "levels",
    "areas",
    "area_emphasis",
    "competencies",
    "expectations",
    "activities",
]
Op = Literal["added", "removed", "changed"]
OPS: tuple[Op, ...] = ("added", "removed", "changed")

SECTIONS: tuple[Section, ...] = (
    "framework",
    "settings",
    "scale",
    "tracks",
    "levels",
    "areas",
    "area_emphasis",
    "competencies",
    "expectations",
    "activities",
)
# Fields of the document itself a diff compares (a version's map and notes describe the step
# between versions, not the framework, so they are not part of it).
FRAMEWORK_FIELDS = ("key", "name", "description")
# Keyed collections: section, the key of each item, and the nested parts that have a section of
# their own.
_KEYED: tuple[tuple[Section, str, tuple[str, ...]], ...] = (
    ("scale", "value", ()),
    ("tracks", "key", ()),
    ("levels", "key", ()),
    ("areas", "key", ("emphasis",)),
    ("competencies", "key", ("expectations",)),
    ("activities", "key", ()),
)


@dataclass(frozen=True, slots=True)
class Change:
    """One difference. ``key`` names the item (for expectations and emphasis, the competency or
    area), ``level`` the level of an expectation or emphasis, ``field`` the changed field of a
    ``changed`` entry (a dotted path inside settings' role weights)."""

    section: Section
    op: Op
    key: str | int | None
    before: Any
    after: Any
    level: str | None = None
    field: str | None = None


def _plain(doc: FrameworkDocument) -> dict[str, Any]:
    return doc.model_dump(mode="json", by_alias=True)


def _by_key(items: Iterable[dict[str, Any]], attr: str) -> dict[Any, dict[str, Any]]:
    return {item[attr]: item for item in items}


def _field_changes(
    section: Section,
    key: str | int | None,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    skip: tuple[str, ...] = (),
    level: str | None = None,
) -> list[Change]:
    out = []
    # A change of key comes first: applying the diff finds a renamed item by its old key.
    for name in sorted(set(before) | set(after), key=lambda n: (n != "key", n)):
        if name in skip:
            continue
        old, new = before.get(name), after.get(name)
        if old != new:
            out.append(Change(section, "changed", key, old, new, level=level, field=name))
    return out


def _nested(
    section: Section,
    key: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> list[Change]:
    """Per-level entries of an expectation map or an emphasis map."""
    out = []
    for level in sorted(set(before) | set(after)):
        old, new = before.get(level), after.get(level)
        if old is None and new is not None:
            out.append(Change(section, "added", key, None, new, level=level))
        elif new is None and old is not None:
            out.append(Change(section, "removed", key, old, None, level=level))
        elif old != new:
            if isinstance(old, dict) and isinstance(new, dict):
                out.extend(_field_changes(section, key, old, new, level=level))
            else:
                out.append(Change(section, "changed", key, old, new, level=level))
    return out


def diff_documents(
    old: FrameworkDocument, new: FrameworkDocument, renames: Mapping[str, str] | None = None
) -> list[Change]:
    """Every difference from ``old`` to ``new``, by section, then key, then level and field.

    ``renames`` (old competency key -> new, e.g. from the new version's map) pairs a renamed
    competency with its old self: one ``key`` change, and its expectations compared level by
    level, instead of a removal and an addition."""
    a, b = _plain(old), _plain(new)
    renamed = {k: v for k, v in (renames or {}).items() if k != v}
    changes = _field_changes(
        "framework",
        None,
        {k: a[k] for k in FRAMEWORK_FIELDS},
        {k: b[k] for k in FRAMEWORK_FIELDS},
    )
    settings_a, settings_b = dict(a["settings"]), dict(b["settings"])
    weights_a, weights_b = settings_a.pop("role_weights"), settings_b.pop("role_weights")
    changes += _field_changes("settings", None, settings_a, settings_b)
    changes += [
        Change("settings", c.op, None, c.before, c.after, field=f"role_weights.{c.field}")
        for c in _field_changes("settings", None, weights_a, weights_b)
    ]
    nested: dict[str, list[Change]] = {"emphasis": [], "expectations": []}
    for section, attr, parts in _KEYED:
        before, after = _by_key(a[section], attr), _by_key(b[section], attr)
        if section == "competencies" and renamed:
            before = {renamed.get(k, k): item for k, item in before.items()}
        for key in _ordered_keys(before, after):
            was, now = before.get(key), after.get(key)
            if was is None and now is not None:
                changes.append(Change(section, "added", key, None, _without(now, parts)))
            elif now is None and was is not None:
                changes.append(Change(section, "removed", key, _without(was, parts), None))
            elif was is not None and now is not None:
                changes += _field_changes(section, key, was, now, skip=parts)
            if now is None:
                continue  # a removed item takes its expectations or emphasis with it
            for part in parts:
                nested[part] += _nested(
                    "area_emphasis" if part == "emphasis" else "expectations",
                    str(key),
                    (was or {}).get(part, {}),
                    now.get(part, {}),
                )
    changes += nested["emphasis"] + nested["expectations"]
    order = {s: i for i, s in enumerate(SECTIONS)}
    return sorted(changes, key=lambda c: order[c.section])


def _ordered_keys(before: Mapping[Any, Any], after: Mapping[Any, Any]) -> list[Any]:
    """Keys in the order of the old document, then the new ones in theirs."""
    return [*before, *(k for k in after if k not in before)]


def _without(item: Mapping[str, Any], parts: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in parts}


def change_as_dict(change: Change) -> dict[str, Any]:
    """The change as plain JSON data (the API and CLI shape)."""
    return {
        "section": change.section,
        "op": change.op,
        "key": change.key,
        "level": change.level,
        "field": change.field,
        "before": change.before,
        "after": change.after,
    }


def apply_diff(old: FrameworkDocument, changes: Iterable[Change]) -> FrameworkDocument:
    """The document ``changes`` lead to from ``old`` (the inverse of :func:`diff_documents`)."""
    data = _plain(old)
    keyed = {section: (attr, parts) for section, attr, parts in _KEYED}
    for c in changes:
        if c.section == "framework":
            data[str(c.field)] = c.after
        elif c.section == "settings":
            target = data["settings"]
            name = str(c.field)
            if name.startswith("role_weights."):
                target, name = target["role_weights"], name.removeprefix("role_weights.")
            _set(target, name, c.after)
        elif c.section in keyed:
            attr, parts = keyed[c.section]
            items: list[dict[str, Any]] = data[c.section]
            if c.op == "added":
                items.append({**c.after, **{p: {} for p in parts}})
            elif c.op == "removed":
                items[:] = [i for i in items if i[attr] != c.key]
            else:
                # A renamed item is found by its old key (its change of key comes first).
                wanted = c.before if c.field == attr else c.key
                item = next(i for i in items if i[attr] == wanted)
                item[str(c.field)] = c.after
        else:
            owner, part = (
                ("areas", "emphasis")
                if c.section == "area_emphasis"
                else ("competencies", "expectations")
            )
            item = next(i for i in data[owner] if i["key"] == c.key)
            per_level: dict[str, Any] = item[part]
            level = str(c.level)
            if c.op == "changed" and c.field is not None:
                per_level[level] = {**per_level[level], c.field: c.after}
            else:
                _set(per_level, level, c.after)
    if "scale" in data:
        data["scale"].sort(key=lambda p: p["value"])
    return FrameworkDocument.model_validate(data)


def _set(target: dict[str, Any], name: str, value: Any) -> None:
    if value is None:
        target.pop(name, None)
    else:
        target[name] = value


# ---- the human summary --------------------------------------------------------------------


def _names(doc: FrameworkDocument) -> Callable[[str, str], str]:
    """A function naming a level or competency key as the document calls it."""
    names = (
        {("levels", lv.key): lv.name for lv in doc.levels}
        | {("competencies", c.key): c.name for c in doc.competencies}
        | {("areas", a.key): a.name for a in doc.areas}
    )

    def name(section: str, key: str) -> str:
        return names.get((section, key), key)

    return name


def _expectation_text(value: Mapping[str, Any]) -> str:
    text = f"{value['required']}"
    return text + (", critical" if value.get("critical") else "")


def summary_lines(
    old: FrameworkDocument, new: FrameworkDocument, changes: Iterable[Change]
) -> list[str]:
    """One Markdown bullet per change, in the words of the ladder."""
    new_name, old_name = _names(new), _names(old)
    singular = {
        "scale": "Scale point",
        "tracks": "Track",
        "levels": "Level",
        "areas": "Area",
        "competencies": "Competency",
        "activities": "Activity",
    }
    lines = []
    for c in changes:
        if c.section in ("framework", "settings"):
            where = "Framework" if c.section == "framework" else "Setting"
            lines.append(f"- {where} `{c.field}`: {_show(c.before)} → {_show(c.after)}")
        elif c.section in singular:
            label = singular[c.section]
            if c.section == "scale":
                title = f"{c.key}"
            else:
                pick = old_name if c.op == "removed" else new_name
                title = pick(c.section, str(c.key))
            if c.field == "key":
                was = old_name(c.section, str(c.before))
                lines.append(
                    f"- {label} renamed: **{was}** (`{c.before}`) → **{title}** (`{c.key}`)"
                )
            elif c.op == "added":
                lines.append(f"- {label} added: **{title}** (`{c.key}`)")
            elif c.op == "removed":
                lines.append(f"- {label} removed: **{title}** (`{c.key}`)")
            else:
                lines.append(
                    f"- {label} **{title}**: `{c.field}` {_show(c.before)} → {_show(c.after)}"
                )
        elif c.section == "expectations":
            level = (old_name if c.op == "removed" else new_name)("levels", str(c.level))
            comp = (old_name if c.op == "removed" else new_name)("competencies", str(c.key))
            if c.op == "added":
                lines.append(f"- {level} now requires {comp} {_expectation_text(c.after)}")
            elif c.op == "removed":
                lines.append(
                    f"- {level} no longer requires {comp} (was {_expectation_text(c.before)})"
                )
            elif c.field == "required":
                lines.append(f"- {level} now requires {comp} {c.after} (was {c.before})")
            elif c.field == "critical":
                state = "critical" if c.after else "no longer critical"
                lines.append(f"- {level}: {comp} is now {state}")
            else:
                lines.append(f"- {level}: indicators of {comp} changed")
        else:
            level = new_name("levels", str(c.level))
            area = new_name("areas", str(c.key))
            lines.append(f"- {level}: emphasis of {area} {_show(c.before)} → {_show(c.after)}")
    return lines


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + "; ".join(_show(v) for v in value) + "]"
    if isinstance(value, str):
        return f"“{value}”" if len(value) <= 60 else f"“{value[:57]}…”"
    return str(value)


def summary_markdown(
    old: FrameworkDocument,
    new: FrameworkDocument,
    changes: list[Change],
    *,
    old_label: str,
    new_label: str,
) -> str:
    """A short Markdown summary: a heading, counts, and one bullet per change."""
    head = f"### {new.name}: {old_label} → {new_label}"
    if not changes:
        return f"{head}\n\nNo changes."
    counts = {op: sum(1 for c in changes if c.op == op) for op in OPS}
    tally = ", ".join(f"{n} {op}" for op, n in counts.items() if n)
    return "\n".join(
        [head, "", f"{len(changes)} change(s): {tally}.", "", *summary_lines(old, new, changes)]
    )
