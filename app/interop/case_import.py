"""CASE 1.1 packages to framework documents (pure: plain values, no I/O).

Import reads any CFPackage. With this service's extension, CASE fields give the tree, names, texts
and scale, and the extensions the rest. A package from another tool (no extension) becomes:

- **areas**: the document's top-level items that have children; deeper groupings are flattened
  into their top-level area; top-level items without children go to an area "General";
- **competencies**: leaf items; name = abbreviatedStatement, else the start of fullStatement;
  description = fullStatement; key = humanCodingScheme slugified, else the identifier slugified
  (made unique); weight 1;
- **scale**: the criterion levels of the rubric criterion with the most scored levels
  (score -> value, quality -> label); scores that are not whole numbers 0-100 become 0..n-1 in
  score order. Without scored rubric levels: the default 0-5 scale;
- **levels**: CASE has no career levels, so one level ``proficient`` requiring, of every
  competency, the lowest scale point at least 60% of the way up the scale (3 on 0-5 and on 1-4).

Every field, association and extension that the framework does not keep is listed in the import
report with its path and a reason. Identifiers that are not UUIDs are matched as given (UUIDs in
any letter case), or refused field by field in strict mode.
"""

import json
import math
import re
import unicodedata
import uuid
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, Field, JsonValue

from app.errors import FieldError, InvalidInput
from app.frameworks.document import (
    FORMAT,
    FrameworkDocument,
    parse_document,
    tolerance_advice,
)
from app.interop.case_model import (
    EXT,
    CaseObject,
    CFDefinition,
    CFItemType,
    CFPackage,
    CFPckgAssociation,
    CFPckgItem,
    CFRubricCriterion,
    LevelExtensions,
    normalized_string,
)

# What the official CASE 1.1 JSON Schema asks of identifiers (``format: uuid``): the RFC 9562
# string form, 8-4-4-4-12 hexadecimal digits, of any version and variant, in either letter case.
UUID_PATTERN = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII | re.IGNORECASE
)
EXTENSION_TERM = re.compile(r"^ext:[a-zA-Z0-9.\-_]+$")


def _fields(names: str) -> frozenset[str]:
    return frozenset(names.split())


ASSOCIATION_TYPES = _fields(
    "isChildOf isPeerOf isPartOf exactMatchOf precedes isRelatedTo replacedBy exemplar "
    "hasSkillLevel isTranslationOf"
)

NAME_MAX = 200
TEXT_MAX = 4000
FOREIGN_NAME_CHARS = 100
REPORT_MAX = 500  # entries; a hostile package must not make the answer unbounded
REQUIRED_SHARE = 0.6  # how far up the scale a foreign framework's single level requires
DEFAULT_SCALE: list[dict[str, Any]] = [
    {"value": 0, "label": "Not demonstrated", "description": "No evidence yet."},
    {"value": 1, "label": "Foundational", "description": "Knows the basics; needs guidance."},
    {"value": 2, "label": "Developing", "description": "Applies it on routine work."},
    {"value": 3, "label": "Proficient", "description": "Applies it reliably on their own."},
    {"value": 4, "label": "Advanced", "description": "Handles the hard cases; raises others."},
    {"value": 5, "label": "Expert", "description": "Sets the standard for the organization."},
]

Path = list[str | int]
# Where this service's extension sits in a package's document, as a request field path.
EXT_PATH: Path = ["body", "CFDocument", "extensions", EXT]


class ReportEntry(BaseModel):
    """What the import did with one part of the package, or why it did not keep it."""

    path: Path = Field(description="Where in the package, e.g. ['CFItems', 3, 'notes'].")
    what: str = Field(max_length=1000)
    kept_as: str | None = Field(
        default=None, max_length=1000, description="What it became in the framework."
    )
    ignored_because: str | None = Field(default=None, max_length=1000)
    count: int = Field(default=1, ge=1, description="How many like parts this entry stands for.")
    value: JsonValue = Field(default=None, description="The (first) value, shortened if long.")


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The framework a package became, and the report of how."""

    document: FrameworkDocument
    report: list[ReportEntry]


# Consumed as structure (identity, links, order) or regenerated on export: never reported.
SILENT: dict[str, frozenset[str]] = {
    "CFPackage": _fields("CFDocument CFItems CFAssociations CFDefinitions CFRubrics"),
    "CFDocument": _fields(
        "identifier uri title description lastChangeDateTime caseVersion CFPackageURI"
    ),
    "CFItem": _fields(
        "identifier uri fullStatement abbreviatedStatement humanCodingScheme lastChangeDateTime "
        "CFDocumentURI CFItemTypeURI listEnumeration"
    ),
    "CFAssociation": _fields(
        "identifier uri associationType sequenceNumber originNodeURI destinationNodeURI "
        "lastChangeDateTime CFDocumentURI"
    ),
    "CFDefinitions": frozenset(),
    "CFRubric": _fields("identifier uri lastChangeDateTime CFRubricCriteria"),
    "CFRubricCriterion": _fields(
        "identifier uri lastChangeDateTime rubricId CFItemURI position CFRubricCriterionLevels"
    ),
    "CFRubricCriterionLevel": _fields(
        "identifier uri lastChangeDateTime rubricCriterionId position score quality description"
    ),
}
# Fields this service writes from the framework and derives again on import of its own packages.
OURS_DERIVED: dict[str, frozenset[str]] = {
    "CFDocument": _fields("creator version adoptionStatus"),
    "CFItem": _fields("CFItemType"),
    "CFDefinitions": _fields("CFItemTypes"),
    "CFRubric": _fields("title description"),
    "CFRubricCriterion": _fields("category description"),
}
# Every field CASE 1.1 defines, to tell "a CASE field we do not keep" from "not CASE at all".
KNOWN: dict[str, frozenset[str]] = {
    "CFPackage": _fields("CFDocument CFItems CFAssociations CFDefinitions CFRubrics extensions"),
    "CFDocument": _fields(
        "identifier uri frameworkType caseVersion creator title lastChangeDateTime "
        "officialSourceURL publisher description subject subjectURI language version "
        "adoptionStatus statusStartDate statusEndDate licenseURI notes extensions CFPackageURI"
    ),
    "CFItem": _fields(
        "identifier fullStatement alternativeLabel CFItemType uri humanCodingScheme "
        "listEnumeration abbreviatedStatement conceptKeywords conceptKeywordsURI notes subject "
        "subjectURI language educationLevel CFItemTypeURI licenseURI statusStartDate "
        "statusEndDate lastChangeDateTime extensions CFDocumentURI"
    ),
    "CFAssociation": _fields(
        "identifier associationType sequenceNumber uri originNodeURI destinationNodeURI "
        "CFAssociationGroupingURI lastChangeDateTime notes extensions CFDocumentURI"
    ),
    "CFDefinitions": _fields(
        "CFConcepts CFSubjects CFLicenses CFItemTypes CFAssociationGroupings extensions"
    ),
    "CFRubric": _fields(
        "identifier uri title description lastChangeDateTime CFRubricCriteria extensions"
    ),
    "CFRubricCriterion": _fields(
        "identifier uri category description CFItemURI weight position rubricId "
        "lastChangeDateTime CFRubricCriterionLevels extensions"
    ),
    "CFRubricCriterionLevel": _fields(
        "identifier uri description quality score feedback position rubricCriterionId "
        "lastChangeDateTime extensions"
    ),
}
NO_COUNTERPART = "a CASE field with no counterpart in a competency framework"


def _preview(value: Any) -> JsonValue:
    """A JSON value for the report, shortened to a string when it is long."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    elif isinstance(value, list):
        value = [
            v.model_dump(mode="json", exclude_none=True) if isinstance(v, BaseModel) else v
            for v in value
        ]
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > 300:
        return text[:299] + "…"
    plain: JsonValue = json.loads(text)
    return plain


class _Report:
    """Report entries in order; entries of one group collapse into one with a count."""

    def __init__(self) -> None:
        self._entries: list[ReportEntry] = []
        self._groups: dict[str, ReportEntry] = {}
        self._left_out = 0

    def add(
        self,
        path: Sequence[str | int],
        what: str,
        *,
        kept_as: str | None = None,
        ignored_because: str | None = None,
        value: Any = None,
        group: str | None = None,
    ) -> None:
        if group is not None and group in self._groups:
            self._groups[group].count += 1
            return
        if len(self._entries) >= REPORT_MAX:
            self._left_out += 1
            return
        entry = ReportEntry(
            path=list(path),
            what=what[:1000],
            kept_as=kept_as[:1000] if kept_as else None,
            ignored_because=ignored_because[:1000] if ignored_because else None,
            value=_preview(value),
        )
        self._entries.append(entry)
        if group is not None:
            self._groups[group] = entry

    @property
    def entries(self) -> list[ReportEntry]:
        """The entries, and one more saying how many were left out of a very long report."""
        if not self._left_out:
            return list(self._entries)
        more = ReportEntry(
            path=[], what=f"{self._left_out} more report entries", ignored_because="left out"
        )
        return [*self._entries, more]


def _norm_id(identifier: str) -> str:
    """An identifier to match on: UUIDs in canonical lower case, anything else as given."""
    text = identifier.strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text


def _slug(text: str) -> str:
    """A framework key from free text: lower-case ASCII letters, digits, '-' and '_'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9_-]+", "-", ascii_text.lower()).strip("-_")
    return slug[:64].rstrip("-_")


def _clip(text: str, limit: int) -> tuple[str, bool]:
    """The text cut to ``limit`` characters (ending in an ellipsis), and whether it was cut."""
    if len(text) <= limit:
        return text, False
    return text[: limit - 1].rstrip() + "…", True


def _shorten(text: str, limit: int) -> tuple[str, bool]:
    """The start of a statement as a one-line name, cut at a word; and whether it was cut."""
    flat = normalized_string(text)
    if len(flat) <= limit:
        return flat, False
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "…", True


def _whole(score: float | None) -> Any:
    # Whole numbers become ints; anything else goes through so validation can name it.
    if score is not None and score.is_integer():
        return int(score)
    return score


def _ext_of(extensions: LevelExtensions | None) -> dict[str, Any]:
    """This service's extension object, from an extensions object or an array of them."""
    holders = extensions if isinstance(extensions, list) else [extensions or {}]
    for holder in holders:
        value = holder.get(EXT)
        if isinstance(value, dict):
            return value
    return {}


def _identifier_fields(pkg: CFPackage) -> Iterator[tuple[Path, str]]:
    """Every field CASE 1.1 types as a UUID, with its path (association ends may be anything)."""
    yield ["CFDocument", "identifier"], pkg.CFDocument.identifier
    for i, item in enumerate(pkg.CFItems):
        yield ["CFItems", i, "identifier"], item.identifier
        if item.CFItemTypeURI is not None:
            yield ["CFItems", i, "CFItemTypeURI", "identifier"], item.CFItemTypeURI.identifier
    for i, assoc in enumerate(pkg.CFAssociations):
        yield ["CFAssociations", i, "identifier"], assoc.identifier
    if pkg.CFDefinitions is not None:
        defs = pkg.CFDefinitions
        lists: tuple[tuple[str, Sequence[CFDefinition | CFItemType]], ...] = (
            ("CFConcepts", defs.CFConcepts),
            ("CFSubjects", defs.CFSubjects),
            ("CFLicenses", defs.CFLicenses),
            ("CFItemTypes", defs.CFItemTypes),
            ("CFAssociationGroupings", defs.CFAssociationGroupings),
        )
        for name, entries in lists:
            for i, entry in enumerate(entries):
                yield ["CFDefinitions", name, i, "identifier"], entry.identifier
    for r, rubric in enumerate(pkg.CFRubrics):
        rpath: Path = ["CFRubrics", r]
        yield [*rpath, "identifier"], rubric.identifier
        for c, crit in enumerate(rubric.CFRubricCriteria):
            cpath: Path = [*rpath, "CFRubricCriteria", c]
            yield [*cpath, "identifier"], crit.identifier
            if crit.CFItemURI is not None:
                yield [*cpath, "CFItemURI", "identifier"], crit.CFItemURI.identifier
            if crit.rubricId is not None:
                yield [*cpath, "rubricId"], crit.rubricId
            for lv, level in enumerate(crit.CFRubricCriterionLevels):
                lpath: Path = [*cpath, "CFRubricCriterionLevels", lv]
                yield [*lpath, "identifier"], level.identifier
                if level.rubricCriterionId is not None:
                    yield [*lpath, "rubricCriterionId"], level.rubricCriterionId


class _UniqueKeys:
    """Keys made unique with a numeric suffix ("key", "key-2", ...), in linear time overall."""

    def __init__(self) -> None:
        self.taken: set[str] = set()
        # The next suffix to try per base: every smaller one was taken, and keys are never freed.
        self.next_suffix: dict[str, int] = {}

    def claim(self, base: str) -> str:
        """The base, or the base with the smallest free suffix; from now on taken."""
        key, n = base, self.next_suffix.get(base, 2)
        if key in self.taken:
            key = _suffixed(base, n)
            while key in self.taken:
                n += 1
                key = _suffixed(base, n)
            self.next_suffix[base] = n + 1
        self.taken.add(key)
        return key


def _suffixed(base: str, n: int) -> str:
    suffix = f"-{n}"
    return base[: 64 - len(suffix)] + suffix


@dataclass
class _Tree:
    """The isChildOf forest of a package's items, by normalized identifier."""

    parent: dict[str, str] = field(default_factory=dict)
    sequence: dict[str, int] = field(default_factory=dict)


class _Importer(ABC):
    """Reading any CFPackage: the report, the errors, the items and their isChildOf tree,
    and the framework's head. ``_OwnPackage`` and ``_ForeignPackage`` make the rest."""

    ours: ClassVar[bool]
    PROFILE: ClassVar[str]

    def __init__(self, pkg: CFPackage, key: str | None, ext: dict[str, Any]) -> None:
        self.pkg = pkg
        self.key_override = key
        self.report = _Report()
        self.errors: list[FieldError] = []
        # Native field path prefix -> where in the package it came from (to name bad fields).
        self.sources: dict[tuple[str | int, ...], Path] = {}
        self.ext = ext
        self.doc_id = _norm_id(pkg.CFDocument.identifier)
        self.items: dict[str, int] = {}
        self.tree = _Tree()
        self.report.add(
            ["CFDocument", "extensions", EXT] if self.ours else ["CFDocument"],
            "package profile",
            kept_as=self.PROFILE,
        )

    # - reporting ------------------------------------------------------------------------------

    def leftovers(self, obj: CaseObject, path: Path, cls: str) -> None:
        """Report each field of a CASE object that the framework does not keep."""
        quiet = SILENT[cls] | (OURS_DERIVED.get(cls, frozenset()) if self.ours else frozenset())
        extra = obj.model_extra or {}
        for name in sorted(set(obj.model_fields_set) | set(extra)):
            value = extra[name] if name in extra else getattr(obj, name)
            if name in quiet or value is None or value == [] or value == {}:
                continue
            if name == "extensions":
                self.foreign_extensions(value, [*path, "extensions"], cls)
                continue
            known = name in KNOWN[cls]
            self.report.add(
                [*path, name],
                f"{cls}.{name}",
                ignored_because=NO_COUNTERPART if known else "not a CASE 1.1 field",
                value=value,
                group=f"field {cls}.{name}",
            )

    def foreign_extensions(self, value: Any, here: Path, cls: str) -> None:
        """Report the extensions at ``here`` that are not this service's own."""
        if isinstance(value, list):  # a criterion level's: an array of extension objects
            for n, holder in enumerate(value):
                self.foreign_extensions(holder, [*here, n], cls)
            return
        if not isinstance(value, dict):
            self.report.add(
                here,
                f"{cls}.extensions",
                ignored_because="extensions must be an object",
                value=value,
                group=f"extensions {cls}",
            )
            return
        for name, content in value.items():
            if self.ours and name == EXT:
                continue
            self.report.add(
                [*here, name],
                f"{cls} extension {name!r}",
                ignored_because="an extension of another tool, which this service cannot interpret",
                value=content,
                group=f"extension {cls}.{name}",
            )

    def criterion_leftovers(self, crit: CFRubricCriterion, cpath: Path) -> None:
        self.leftovers(crit, cpath, "CFRubricCriterion")
        for lv, level in enumerate(crit.CFRubricCriterionLevels):
            self.leftovers(level, [*cpath, "CFRubricCriterionLevels", lv], "CFRubricCriterionLevel")

    # - shared reading -------------------------------------------------------------------------

    def read_items(self) -> None:
        for i, item in enumerate(self.pkg.CFItems):
            ident = _norm_id(item.identifier)
            if ident in self.items or ident == self.doc_id:
                self.report.add(
                    ["CFItems", i, "identifier"],
                    "item with a duplicate identifier",
                    ignored_because="another item (or the document) already has this identifier",
                    value=item.identifier,
                    group="duplicate item",
                )
                continue
            self.items[ident] = i

    def read_associations(self) -> None:
        for i, assoc in enumerate(self.pkg.CFAssociations):
            path: Path = ["CFAssociations", i]
            self.leftovers(assoc, path, "CFAssociation")
            kind = assoc.associationType.strip()
            ends = {
                "origin": assoc.originNodeURI.identifier,
                "destination": assoc.destinationNodeURI.identifier,
            }
            if kind == "isChildOf":
                self.child_of(path, assoc, ends)
            elif kind in ASSOCIATION_TYPES:
                self.report.add(
                    path,
                    f"{kind} association",
                    ignored_because=f"{kind!r} has no counterpart in a competency framework",
                    value=ends,
                    group=f"association {kind}",
                )
            else:
                reason = (
                    "a proprietary association type this service does not know"
                    if EXTENSION_TERM.match(kind)
                    else "not a CASE 1.1 association type"
                )
                self.report.add(
                    [*path, "associationType"],
                    f"unknown association type {kind!r}",
                    ignored_because=reason,
                    value=ends,
                    group=f"association {kind}",
                )

    def child_of(self, path: Path, assoc: CFPckgAssociation, ends: dict[str, str]) -> None:
        child = _norm_id(assoc.originNodeURI.identifier)
        parent = _norm_id(assoc.destinationNodeURI.identifier)
        if child not in self.items:
            why = "its child is not an item of this package"
        elif parent != self.doc_id and parent not in self.items:
            why = "its parent is outside this package, so the child counts as top-level"
        elif child in self.tree.parent:
            why = "the item already has a parent; a competency belongs to one area"
        elif child == parent:
            why = "an item cannot be its own parent"
        else:
            self.tree.parent[child] = parent
            if assoc.sequenceNumber is not None:
                self.tree.sequence[child] = assoc.sequenceNumber
            return
        self.report.add(
            path, "isChildOf association", ignored_because=why, value=ends, group=f"isChildOf {why}"
        )

    def read_package_fields(self) -> None:
        pkg = self.pkg
        self.leftovers(pkg, [], "CFPackage")
        self.leftovers(pkg.CFDocument, ["CFDocument"], "CFDocument")
        if pkg.CFDefinitions is not None:
            self.leftovers(pkg.CFDefinitions, ["CFDefinitions"], "CFDefinitions")

    def rubric_scale(self) -> tuple[list[dict[str, Any]], Path]:
        """The scale from the rubric criterion with the most scored levels, else the default."""
        candidates: list[tuple[Path, CFRubricCriterion, list[float]]] = []
        for r, rubric in enumerate(self.pkg.CFRubrics):
            for c, crit in enumerate(rubric.CFRubricCriteria):
                scores = sorted(
                    {lv.score for lv in crit.CFRubricCriterionLevels if lv.score is not None}
                )
                if len(scores) >= 2:
                    candidates.append((["CFRubrics", r, "CFRubricCriteria", c], crit, scores))
        if not candidates:
            self.report.add(
                ["CFRubrics"],
                "proficiency scale",
                kept_as="the default 0-5 scale: no rubric criterion has two or more scored levels",
            )
            return [dict(p) for p in DEFAULT_SCALE], ["CFRubrics"]
        path, crit, scores = max(candidates, key=lambda c: len(c[2]))
        whole = all(s.is_integer() and 0 <= s <= 100 for s in scores)
        points = []
        self.sources[("scale",)] = ["body", *path, "CFRubricCriterionLevels"]
        for index, score in enumerate(scores):
            lv, level = next(
                (lv, level)
                for lv, level in enumerate(crit.CFRubricCriterionLevels)
                if level.score == score
            )
            label = _clip(normalized_string(level.quality or ""), NAME_MAX)[0] or f"Score {score:g}"
            text = _clip((level.description or level.feedback or "").strip(), TEXT_MAX)[0]
            points.append(
                {"value": int(score) if whole else index, "label": label, "description": text}
            )
            self.sources[("scale", index)] = ["body", *path, "CFRubricCriterionLevels", lv]
        summary = ", ".join(f"{p['value']} {p['label']}" for p in points)
        note = (
            "" if whole else "; scores are not whole numbers 0-100, so points are 0..n-1 by score"
        )
        self.report.add(
            [*path, "CFRubricCriterionLevels"],
            "rubric criterion levels",
            kept_as=f"the proficiency scale: {summary}{note}",
        )
        for other_path, _, other_scores in candidates:
            if other_scores != scores:
                self.report.add(
                    [*other_path, "CFRubricCriterionLevels"],
                    "rubric criterion levels",
                    ignored_because="their scores differ from the scale taken from "
                    + ".".join(str(p) for p in path),
                    value=other_scores,
                    group="other scales",
                )
        return points, path

    # - assembly -------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.read_items()
        self.read_package_fields()
        self.read_associations()
        return self.head() | self.body()

    def head(self) -> dict[str, Any]:
        """Format, key, name and description of the framework."""
        for section in ("settings", "tracks", "activities"):
            self.sources[(section,)] = [*EXT_PATH, section]
        self.sources[("name",)] = ["body", "CFDocument", "title"]
        self.sources[("description",)] = ["body", "CFDocument", "description"]
        name, description = self.document_texts()
        if self.key_override is not None:
            key: Any = self.key_override
            self.sources[("key",)] = ["query", "key"]
        else:
            key = self.default_key()
        return {"format": FORMAT, "key": key, "name": name, "description": description}

    @abstractmethod
    def document_texts(self) -> tuple[Any, Any]:
        """The framework's name and description."""

    @abstractmethod
    def default_key(self) -> Any:
        """The framework's key when the request names none."""

    @abstractmethod
    def body(self) -> dict[str, Any]:
        """Scale, levels, areas and competencies (and, for this service's packages, the rest)."""

    def remap(self, error: FieldError) -> FieldError:
        """Name the package field behind an error found in the converted framework."""
        loc = error.loc
        where = ".".join(str(p) for p in loc)
        for size in (4, 2, 1):
            prefix = tuple(loc[:size])
            if len(loc) >= size and prefix in self.sources:
                return FieldError(
                    loc=[*self.sources[prefix], *loc[size:]],
                    msg=f"{error.msg} (framework field {where})",
                    type=error.type,
                )
        return FieldError(loc=["body", *loc], msg=error.msg, type=error.type)


class _OwnPackage(_Importer):
    """A package this service wrote: CASE fields and this service's extensions, read losslessly."""

    ours = True
    PROFILE = "a package written by this service: read with its extensions, losslessly"

    def document_texts(self) -> tuple[Any, Any]:
        doc = self.pkg.CFDocument
        return self.ext.get("name", doc.title), doc.description or ""

    def default_key(self) -> Any:
        self.sources[("key",)] = [*EXT_PATH, "key"]
        return self.ext.get("key")

    def item_texts(self, item: CFPckgItem, ext: dict[str, Any]) -> tuple[Any, str]:
        if item.abbreviatedStatement is None and "name" not in ext:
            return item.fullStatement, ""
        return ext.get("name", item.abbreviatedStatement), item.fullStatement

    def body(self) -> dict[str, Any]:
        areas: list[dict[str, Any]] = []
        competencies: list[dict[str, Any]] = []
        levels: list[dict[str, Any]] = []
        # Areas may follow their competencies in CFItems, so find them all first.
        area_of_item = {
            ident: self.pkg.CFItems[i].humanCodingScheme
            for ident, i in self.items.items()
            if (self.pkg.CFItems[i].CFItemType or "").strip() == "Area"
        }
        competency_of_item: dict[str, int] = {}
        for ident, i in self.items.items():
            item = self.pkg.CFItems[i]
            path: Path = ["body", "CFItems", i]
            self.leftovers(item, path[1:], "CFItem")
            ext = _ext_of(item.extensions)
            name, description = self.item_texts(item, ext)
            element: dict[str, Any] = {
                "key": item.humanCodingScheme,
                "name": name,
                "description": description,
            }
            kind = (item.CFItemType or "").strip()
            if kind == "Area":
                if "emphasis" in ext:
                    element["emphasis"] = ext["emphasis"]
                self.sources[("areas", len(areas))] = path
                areas.append(element)
            elif kind == "Competency":
                parent = self.tree.parent.get(ident)
                if parent not in area_of_item:
                    self.errors.append(
                        FieldError(
                            loc=path,
                            msg="a Competency item must be the child (isChildOf) of an Area item",
                            type="unknown_reference",
                        )
                    )
                element |= {
                    "area": area_of_item.get(parent or ""),
                    "weight": ext.get("weight", 1.0),
                    "expectations": {},
                }
                self.sources[("competencies", len(competencies))] = path
                competency_of_item[ident] = len(competencies)
                competencies.append(element)
            elif kind == "Level":
                element["rank"] = ext.get("rank")
                if ext.get("track") is not None:
                    element["track"] = ext["track"]
                self.sources[("levels", len(levels))] = path
                levels.append(element)
            else:
                self.report.add(
                    path[1:],
                    f"item of type {kind!r}",
                    ignored_because="this service's packages hold only Area, Competency and Level items",
                    value=item.fullStatement,
                    group=f"item type {kind}",
                )
        scale = self.rubrics(competencies, competency_of_item)
        for section in ("areas", "competencies", "levels"):
            self.sources.setdefault((section,), ["body", "CFItems"])
        body: dict[str, Any] = {
            "scale": scale,
            "levels": levels,
            "areas": areas,
            "competencies": competencies,
        }
        for section in ("settings", "tracks", "activities"):
            if section in self.ext:
                body[section] = self.ext[section]
        return body

    def rubrics(
        self, competencies: list[dict[str, Any]], competency_of_item: dict[str, int]
    ) -> list[dict[str, Any]]:
        scale: list[dict[str, Any]] | None = None
        for r, rubric in enumerate(self.pkg.CFRubrics):
            rpath: Path = ["CFRubrics", r]
            self.leftovers(rubric, rpath, "CFRubric")
            is_scale = _ext_of(rubric.extensions).get("role") == "scale"
            for c, crit in enumerate(rubric.CFRubricCriteria):
                cpath: Path = [*rpath, "CFRubricCriteria", c]
                self.criterion_leftovers(crit, cpath)
                if is_scale:
                    if scale is None:
                        scale = self.scale_of(crit, cpath)
                    continue
                self.expectation(crit, cpath, competencies, competency_of_item)
        if scale is None:
            return self.rubric_scale()[0]
        return scale

    def expectation(
        self,
        crit: CFRubricCriterion,
        cpath: Path,
        competencies: list[dict[str, Any]],
        competency_of_item: dict[str, int],
    ) -> None:
        cext = _ext_of(crit.extensions)
        if not cext:
            self.report.add(
                cpath,
                "rubric criterion without this service's extension",
                ignored_because="it names no level or required proficiency",
                group="criterion without extension",
            )
            return
        target = _norm_id(crit.CFItemURI.identifier) if crit.CFItemURI is not None else ""
        level = cext.get("level")
        if target not in competency_of_item:
            self.errors.append(
                FieldError(
                    loc=["body", *cpath, "CFItemURI"],
                    msg="must link a Competency item of this package",
                    type="unknown_reference",
                )
            )
            return
        if not isinstance(level, str):
            self.errors.append(
                FieldError(
                    loc=["body", *cpath, "extensions", EXT, "level"],
                    msg="must name the level this expectation is for",
                    type="missing",
                )
            )
            return
        index = competency_of_item[target]
        competencies[index]["expectations"][level] = {
            "required": cext.get("required"),
            "critical": cext.get("critical", False),
            "indicators": cext.get("indicators", []),
        }
        self.sources[("competencies", index, "expectations", level)] = [
            "body",
            *cpath,
            "extensions",
            EXT,
        ]

    def scale_of(self, crit: CFRubricCriterion, cpath: Path) -> list[dict[str, Any]]:
        ordered = sorted(
            enumerate(crit.CFRubricCriterionLevels),
            key=lambda pair: (
                pair[1].position if pair[1].position is not None else math.inf,
                pair[0],
            ),
        )
        points = []
        self.sources[("scale",)] = ["body", *cpath, "CFRubricCriterionLevels"]
        for i, (lv, level) in enumerate(ordered):
            label = _ext_of(level.extensions).get("label", level.quality)
            points.append(
                {
                    "value": _whole(level.score),
                    "label": label,
                    "description": level.description or "",
                }
            )
            self.sources[("scale", i)] = ["body", *cpath, "CFRubricCriterionLevels", lv]
        return points


class _ForeignPackage(_Importer):
    """A package from another tool, mapped by the rules in this module's docstring."""

    ours = False
    PROFILE = "a package from another tool: mapped by the rules of the CASE import"

    def document_texts(self) -> tuple[Any, Any]:
        doc = self.pkg.CFDocument
        name, cut = _clip(normalized_string(doc.title), NAME_MAX)
        if cut:
            self.report.add(
                ["CFDocument", "title"],
                "document title",
                kept_as="name, shortened",
                value=doc.title,
            )
        description, cut = _clip((doc.description or "").strip(), TEXT_MAX)
        if cut:
            self.report.add(
                ["CFDocument", "description"],
                "document description",
                kept_as=f"description, cut to {TEXT_MAX} characters",
            )
        return name, description

    def default_key(self) -> str:
        doc = self.pkg.CFDocument
        key = _slug(doc.title) or f"case-{_slug(self.doc_id)[:8]}"
        self.sources[("key",)] = ["body", "CFDocument", "title"]
        self.report.add(
            ["CFDocument", "title"],
            "framework key",
            kept_as=f"key {key!r}, from the title (send ?key= to choose another)",
        )
        return key

    def body(self) -> dict[str, Any]:
        for i in self.items.values():
            self.leftovers(self.pkg.CFItems[i], ["CFItems", i], "CFItem")
        areas, competencies = self.areas_and_competencies()
        for r, rubric in enumerate(self.pkg.CFRubrics):
            self.leftovers(rubric, ["CFRubrics", r], "CFRubric")
            for c, crit in enumerate(rubric.CFRubricCriteria):
                self.criterion_leftovers(crit, ["CFRubrics", r, "CFRubricCriteria", c])
        scale, scale_path = self.rubric_scale()
        values = [int(p["value"]) for p in scale]
        lo, hi = min(values), max(values)
        required = min(v for v in values if v >= lo + REQUIRED_SHARE * (hi - lo) - 1e-9)
        label = next(p["label"] for p in scale if p["value"] == required)
        for comp in competencies:
            comp["expectations"] = {"proficient": {"required": required}}
        self.report.add(
            scale_path,
            "career levels",
            kept_as=f"one level 'proficient' requiring {label} ({required}) of every competency: "
            "CASE has no career levels",
        )
        self.report.add(
            ["CFItems"], "competency weights", kept_as="1 for every competency: CASE has no weights"
        )
        for section in ("areas", "competencies", "levels"):
            self.sources.setdefault((section,), ["body", "CFItems"])
        level = {
            "key": "proficient",
            "name": "Proficient",
            "rank": 1,
            "description": "Made on import from CASE, which has no career levels: every "
            "competency is expected at the scale's proficient point.",
        }
        return {
            "scale": scale,
            "levels": [level],
            "areas": areas,
            "competencies": competencies,
        }

    def areas_and_competencies(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        children: dict[str, list[str]] = defaultdict(list)
        for child, parent in self.tree.parent.items():
            if parent in self.items:
                children[parent].append(child)

        def order(ident: str) -> tuple[float, int]:
            return (self.tree.sequence.get(ident, math.inf), self.items[ident])

        roots = [i for i in self.items if self.tree.parent.get(i) not in self.items]
        reached = self.reach(roots, children)
        for ident in self.items:
            if ident in reached:
                continue
            # Only an isChildOf cycle leaves items unreached: walk up to it and cut it there.
            walked: set[str] = set()
            node = ident
            while node not in walked:
                walked.add(node)
                node = self.tree.parent[node]
            children[self.tree.parent.pop(node)].remove(node)
            roots.append(node)
            reached |= self.reach([node], children)
            self.report.add(
                ["CFItems", self.items[node]],
                "isChildOf cycle",
                kept_as="the item was treated as top-level",
                group="cycle",
            )
        area_keys, comp_keys = _UniqueKeys(), _UniqueKeys()
        areas: list[dict[str, Any]] = []
        competencies: list[dict[str, Any]] = []
        general: list[str] = []
        for root in sorted(roots, key=order):
            if not children[root]:
                general.append(root)
                continue
            area = self.element(root, area_keys)
            areas.append(area)
            stack = sorted(children[root], key=order, reverse=True)
            while stack:
                node = stack.pop()
                if children[node]:
                    self.report.add(
                        ["CFItems", self.items[node]],
                        "grouping item below the top level",
                        kept_as=f"flattened: its competencies are in area {area['key']!r}",
                        value=self.pkg.CFItems[self.items[node]].fullStatement,
                        group="flattened",
                    )
                    stack += sorted(children[node], key=order, reverse=True)
                    continue
                competencies.append(self.competency(node, area["key"], comp_keys))
        if general:
            key = area_keys.claim("general")
            areas.append(
                {
                    "key": key,
                    "name": "General",
                    "description": "Top-level items of the CASE document that have no children.",
                }
            )
            for node in general:
                competencies.append(self.competency(node, key, comp_keys))
            self.report.add(
                ["CFItems", self.items[general[0]]],
                f"{len(general)} top-level item(s) without children",
                kept_as=f"competencies of an area {key!r} made for them",
            )
        self.report.add(
            ["CFItems"],
            "item tree (isChildOf)",
            kept_as=f"{len(areas)} area(s) and {len(competencies)} competencies: top-level items "
            "with children became areas, leaf items competencies",
        )
        return areas, competencies

    def reach(self, roots: list[str], children: dict[str, list[str]]) -> set[str]:
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack += children[node]
        return seen

    def element(self, ident: str, taken: _UniqueKeys) -> dict[str, Any]:
        i = self.items[ident]
        item = self.pkg.CFItems[i]
        path: Path = ["CFItems", i]
        base = _slug(item.humanCodingScheme or "")
        if not base:
            base = _slug(item.identifier) or "item"
            self.report.add(
                [*path, "identifier"],
                "item without a humanCodingScheme",
                kept_as="its key was made from its identifier",
                value=item.identifier,
                group="key from identifier",
            )
        key = taken.claim(base)
        if key != base:
            self.report.add(
                [*path, "humanCodingScheme"],
                "item whose key another item already has",
                kept_as=f"key {key!r}",
                value=base,
                group="renamed",
            )
        abbreviated = normalized_string(item.abbreviatedStatement or "")
        full = item.fullStatement.strip()
        if abbreviated:
            name, shortened = _clip(abbreviated, NAME_MAX)
        else:
            name, shortened = _shorten(full, FOREIGN_NAME_CHARS)
        if not name:
            name = _clip(item.humanCodingScheme or item.identifier, NAME_MAX)[0]
        description = full if (abbreviated or shortened) and full != name else ""
        description, cut = _clip(description, TEXT_MAX)
        if cut:
            self.report.add(
                [*path, "fullStatement"],
                "long fullStatement",
                kept_as=f"description, cut to {TEXT_MAX} characters",
                group="cut statement",
            )
        return {"key": key, "name": name, "description": description}

    def competency(self, ident: str, area: str, taken: _UniqueKeys) -> dict[str, Any]:
        element = self.element(ident, taken)
        return {**element, "area": area, "weight": 1.0}


def _importer(pkg: CFPackage, key: str | None) -> _Importer:
    """The importer for this package: this service's own, or another tool's."""
    ext = _ext_of(pkg.CFDocument.extensions)
    if ext.get("profile") == FORMAT:
        return _OwnPackage(pkg, key, ext)
    return _ForeignPackage(pkg, key, {})


def package_to_document(
    pkg: CFPackage, *, strict: bool = False, key: str | None = None
) -> ImportResult:
    """Convert a CFPackage into a validated framework document and the report of how."""
    report_ids: list[tuple[Path, str]] = []
    bad: list[FieldError] = []
    for path, value in _identifier_fields(pkg):
        if UUID_PATTERN.fullmatch(value):
            continue
        if strict:
            bad.append(
                FieldError(
                    loc=["body", *path],
                    msg=f"{value[:100]!r} is not a UUID; strict mode needs 8-4-4-4-12 "
                    "hexadecimal UUIDs (format uuid) as CASE 1.1 requires",
                    type="uuid",
                )
            )
        else:
            report_ids.append((path, value))
    if bad:
        raise InvalidInput(f"{len(bad)} identifier(s) are not UUIDs.", errors=bad)
    importer = _importer(pkg, key)
    for path, value in report_ids:
        importer.report.add(
            path,
            "identifier that is not a CASE UUID",
            kept_as="matched as given (send ?strict=true to refuse such identifiers)",
            value=value,
            group="non-UUID identifier",
        )
    native = importer.run()
    if importer.errors:
        raise InvalidInput(
            f"The CASE package has {len(importer.errors)} problem(s).", errors=importer.errors
        )
    try:
        document = parse_document(native)
    except InvalidInput as exc:
        errors = [importer.remap(e) for e in exc.errors or []]
        raise InvalidInput(
            f"The CASE package does not make a valid framework: {len(errors)} problem(s).",
            errors=errors,
        ) from None
    for advice in tolerance_advice(document):
        importer.report.add(
            ["CFDocument"], advice, kept_as=f"gap_tolerance {document.settings.gap_tolerance:g}"
        )
    return ImportResult(document=document, report=importer.report.entries)
