"""Framework documents to CASE 1.1 packages (pure: plain values, no I/O).

Export writes a CFPackage that any CASE 1.1 consumer can read, plus ``extensions`` objects under
the key ``competencyLadder`` that carry what CASE has no field for, so that importing the package
again gives the same framework:

- **CFDocument**: title = name, description, ``version`` = version number, ``adoptionStatus`` from
  the version's status (Draft, Adopted, Deprecated). Extension: ``profile`` (the native format),
  ``key``, ``settings``, ``tracks`` and ``activities`` as in the framework file.
- **CFItems** typed ``Area``, ``Competency`` and ``Level`` (declared in CFDefinitions.CFItemTypes):
  humanCodingScheme = key; fullStatement = description, abbreviatedStatement = name (an element
  without a description has fullStatement = name and no abbreviatedStatement). Areas and levels
  are ``isChildOf`` the document, competencies ``isChildOf`` their area, in order
  (``sequenceNumber``). Extensions: area ``emphasis``, competency ``weight``, level ``rank`` and
  ``track``.
- **CFRubrics**: a "Proficiency scale" rubric (extension ``role: scale``) whose one criterion lists
  the scale as CFRubricCriterionLevels (quality = label, score = value, description); and one
  rubric per competency with one criterion per level it has an expectation at (CFItemURI = the
  competency, category = the level's name, the scale as its levels, a readable description), whose
  extension holds ``level``, ``required``, ``critical`` and ``indicators``.
- **Identifiers** are uuid5 of a fixed namespace and "owner tenant/key/version/kind/element", so a
  re-export is identical and two tenants' frameworks never share an identifier. URIs point at this
  service's ``/ims/case/v1p1`` routes. Names go into NormalizedString fields with whitespace
  collapsed; when that changes a name, the original is kept in the element's extension.
"""

import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from app.frameworks.document import FORMAT, FrameworkDocument, dump_document
from app.interop.case_model import EXT, normalized_string

# Changing this namespace changes every exported identifier: never change it.
NAMESPACE = uuid.UUID("b36fd0ab-b061-42b0-b986-1d7e0c5bd87a")
CASE_VERSION = "1.1"
CREATOR = "Competency Ladder"
ADOPTION_STATUS = {"draft": "Draft", "published": "Adopted", "archived": "Deprecated"}

ItemKind = Literal["Area", "Competency", "Level"]
ITEM_TYPES: dict[ItemKind, str] = {
    "Area": "A group of related competencies, with the share of each level it carries.",
    "Competency": "A competency people are rated on, with what each level requires of it.",
    "Level": "A career level (a rung of the ladder), with its rank and optional track.",
}


@dataclass(frozen=True, slots=True)
class CaseIds:
    """Deterministic CASE identifiers of one framework version's elements."""

    owner: uuid.UUID
    key: str
    version: int

    def of(self, kind: str, element: str = "") -> str:
        """The identifier of one element (kind and key) of this framework version."""
        name = f"{self.owner}/{self.key}/{self.version}/{kind}/{element}"
        return str(uuid.uuid5(NAMESPACE, name))

    @property
    def document(self) -> str:
        """The CFDocument's identifier, which also names its CFPackage."""
        return self.of("document")


@dataclass(frozen=True, slots=True)
class ExportContext:
    """What an export needs besides the document: identity, status, time and base URI."""

    ids: CaseIds
    status: str
    changed_at: datetime
    base_uri: str
    creator: str = CREATOR


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _item_type_id(kind: ItemKind) -> str:
    # Item types mean the same in every framework, so their identifiers are shared.
    return str(uuid.uuid5(NAMESPACE, f"item-type/{kind}"))


class _Exporter:
    def __init__(self, doc: FrameworkDocument, ctx: ExportContext) -> None:
        self.doc, self.ctx, self.ids = doc, ctx, ctx.ids
        self.stamp = _stamp(ctx.changed_at)
        self.title = normalized_string(doc.name)

    def uri(self, collection: str, identifier: str) -> str:
        return f"{self.ctx.base_uri}/{collection}/{identifier}"

    def link(self, collection: str, identifier: str, title: str) -> dict[str, Any]:
        return {
            "title": normalized_string(title),
            "identifier": identifier,
            "uri": self.uri(collection, identifier),
        }

    def document(self) -> dict[str, Any]:
        doc, identifier = self.doc, self.ids.document
        native = dump_document(doc)
        ext: dict[str, Any] = {
            "profile": FORMAT,
            "key": doc.key,
            "settings": native["settings"],
            "tracks": native["tracks"],
            "activities": native["activities"],
        }
        if self.title != doc.name:
            ext["name"] = doc.name
        out: dict[str, Any] = {
            "identifier": identifier,
            "uri": self.uri("CFDocuments", identifier),
            "creator": self.ctx.creator,
            "title": self.title,
            "lastChangeDateTime": self.stamp,
        }
        if doc.description:
            out["description"] = doc.description
        out |= {
            "version": str(self.ids.version),
            "adoptionStatus": ADOPTION_STATUS.get(self.ctx.status, self.ctx.status.title()),
            "caseVersion": CASE_VERSION,
            "extensions": {EXT: ext},
        }
        return out

    def item(
        self, kind: ItemKind, key: str, name: str, description: str, ext: dict[str, Any]
    ) -> dict[str, Any]:
        identifier = self.ids.of(kind.lower(), key)
        out: dict[str, Any] = {
            "identifier": identifier,
            "uri": self.uri("CFItems", identifier),
            # Without a description the name is the statement, kept whole (not normalized).
            "fullStatement": description or name,
            "humanCodingScheme": key,
            "CFItemType": kind,
            "CFItemTypeURI": self.link("CFItemTypes", _item_type_id(kind), kind),
            "lastChangeDateTime": self.stamp,
        }
        if description:
            out["abbreviatedStatement"] = normalized_string(name)
            if normalized_string(name) != name:
                ext = {**ext, "name": name}
        if ext:
            out["extensions"] = {EXT: ext}
        return out

    def items(self) -> list[dict[str, Any]]:
        doc = self.doc
        out = [
            self.item(
                "Area", a.key, a.name, a.description, {"emphasis": a.emphasis} if a.emphasis else {}
            )
            for a in doc.areas
        ]
        out += [
            self.item("Competency", c.key, c.name, c.description, {"weight": c.weight})
            for c in doc.competencies
        ]
        for lv in doc.levels:
            ext: dict[str, Any] = {"rank": lv.rank}
            if lv.track is not None:
                ext["track"] = lv.track
            out.append(self.item("Level", lv.key, lv.name, lv.description, ext))
        return out

    def child_of(
        self, kind: ItemKind, key: str, name: str, parent: tuple[str, str, str], sequence: int
    ) -> dict[str, Any]:
        collection, parent_id, parent_title = parent
        origin = self.ids.of(kind.lower(), key)
        identifier = self.ids.of("is-child-of", f"{kind.lower()}:{key}")
        return {
            "identifier": identifier,
            "uri": self.uri("CFAssociations", identifier),
            "associationType": "isChildOf",
            "sequenceNumber": sequence,
            "originNodeURI": self.link("CFItems", origin, name),
            "destinationNodeURI": self.link(collection, parent_id, parent_title),
            "lastChangeDateTime": self.stamp,
        }

    def associations(self) -> list[dict[str, Any]]:
        doc = self.doc
        document = ("CFDocuments", self.ids.document, self.title)
        out = [
            self.child_of("Area", a.key, a.name, document, i)
            for i, a in enumerate(doc.areas, start=1)
        ]
        areas = {a.key: a for a in doc.areas}
        position: dict[str, int] = defaultdict(int)
        for c in doc.competencies:
            area = areas[c.area]
            position[c.area] += 1
            parent = ("CFItems", self.ids.of("area", area.key), area.name)
            out.append(self.child_of("Competency", c.key, c.name, parent, position[c.area]))
        first = len(doc.areas) + 1
        out += [
            self.child_of("Level", lv.key, lv.name, document, i)
            for i, lv in enumerate(doc.levels, start=first)
        ]
        return out

    def scale_levels(
        self, criterion_id: str, element: str, *, described: bool
    ) -> list[dict[str, Any]]:
        out = []
        for position, point in enumerate(self.doc.scale, start=1):
            identifier = self.ids.of("criterion-level", f"{element}/{point.value}")
            level: dict[str, Any] = {
                "identifier": identifier,
                "uri": self.uri("CFRubricCriterionLevels", identifier),
                "quality": normalized_string(point.label),
                "score": point.value,
                "position": position,
                "rubricCriterionId": criterion_id,
                "lastChangeDateTime": self.stamp,
            }
            # The scale rubric describes each point; per-competency copies need not repeat it.
            if described and point.description:
                level["description"] = point.description
            if normalized_string(point.label) != point.label:
                level["extensions"] = [{EXT: {"label": point.label}}]
            out.append(level)
        return out

    def criterion(
        self, rubric_id: str, element: str, position: int, fields: dict[str, Any]
    ) -> dict[str, Any]:
        identifier = self.ids.of("criterion", element)
        return {
            "identifier": identifier,
            "uri": self.uri("CFRubricCriteria", identifier),
            **fields,
            "position": position,
            "rubricId": rubric_id,
            "lastChangeDateTime": self.stamp,
            "CFRubricCriterionLevels": self.scale_levels(
                identifier, element, described=element == "scale"
            ),
        }

    def rubric(
        self, element: str, title: str, description: str, criteria: list[dict[str, Any]]
    ) -> dict[str, Any]:
        identifier = self.ids.of("rubric", element)
        return {
            "identifier": identifier,
            "uri": self.uri("CFRubrics", identifier),
            "title": normalized_string(title),
            "description": description,
            "lastChangeDateTime": self.stamp,
            "CFRubricCriteria": criteria,
        }

    def rubrics(self) -> list[dict[str, Any]]:
        doc = self.doc
        scale_id = self.ids.of("rubric", "scale")
        scale = self.rubric(
            "scale",
            "Proficiency scale",
            "The proficiency points every competency of this framework is rated on.",
            [self.criterion(scale_id, "scale", 1, {"category": "Proficiency scale"})],
        )
        scale["extensions"] = {EXT: {"role": "scale"}}
        out = [scale]
        labels = {p.value: p.label for p in doc.scale}
        for comp in doc.competencies:
            rubric_id = self.ids.of("rubric", comp.key)
            comp_id = self.ids.of("competency", comp.key)
            criteria: list[dict[str, Any]] = []
            for lv in doc.levels:
                exp = comp.expectations.get(lv.key)
                if exp is None:
                    continue
                text = f"{lv.name} requires {labels[exp.required]} ({exp.required}) or better"
                if exp.critical:
                    text += "; critical: a promotion committee will not waive it"
                if exp.indicators:
                    text += ". Observable: " + "; ".join(i.rstrip(".") for i in exp.indicators)
                fields = {
                    "category": normalized_string(lv.name),
                    "description": text + ".",
                    "CFItemURI": self.link("CFItems", comp_id, comp.name),
                    "extensions": {
                        EXT: {
                            "level": lv.key,
                            "required": exp.required,
                            "critical": exp.critical,
                            "indicators": list(exp.indicators),
                        }
                    },
                }
                criteria.append(
                    self.criterion(rubric_id, f"{comp.key}/{lv.key}", len(criteria) + 1, fields)
                )
            out.append(
                self.rubric(
                    comp.key,
                    comp.name,
                    f"What each level requires of {normalized_string(comp.name)}.",
                    criteria,
                )
            )
        return out

    def definitions(self) -> dict[str, Any]:
        types = []
        for code, (kind, description) in enumerate(ITEM_TYPES.items(), start=1):
            identifier = _item_type_id(kind)
            types.append(
                {
                    "identifier": identifier,
                    "uri": self.uri("CFItemTypes", identifier),
                    "title": kind,
                    "description": description,
                    "hierarchyCode": str(code),
                    "typeCode": kind.lower(),
                    "lastChangeDateTime": self.stamp,
                }
            )
        return {"CFItemTypes": types}

    def package(self) -> dict[str, Any]:
        return {
            "CFDocument": self.document(),
            "CFItems": self.items(),
            "CFAssociations": self.associations(),
            "CFDefinitions": self.definitions(),
            "CFRubrics": self.rubrics(),
        }


def document_to_package(doc: FrameworkDocument, ctx: ExportContext) -> dict[str, Any]:
    """The framework version as a CASE 1.1 CFPackage (JSON-compatible data)."""
    return _Exporter(doc, ctx).package()


def cf_document(doc: FrameworkDocument, ctx: ExportContext) -> dict[str, Any]:
    """The framework version's CFDocument on its own, with the link to its package."""
    exporter = _Exporter(doc, ctx)
    out = exporter.document()
    out["CFPackageURI"] = exporter.link("CFPackages", ctx.ids.document, exporter.title)
    return out


def cf_item(doc: FrameworkDocument, ctx: ExportContext, identifier: str) -> dict[str, Any] | None:
    """One CFItem on its own, with the link to its document; None if the version has no such item."""
    exporter = _Exporter(doc, ctx)
    for item in exporter.items():
        if item["identifier"] == identifier:
            item["CFDocumentURI"] = exporter.link("CFDocuments", ctx.ids.document, exporter.title)
            return item
    return None


def identifiers(content: Mapping[str, Any], ids: CaseIds) -> dict[str, str]:
    """Identifier -> CASE class ("CFDocument" or "CFItem") of a version's addressable objects.

    Read from the stored document (the native format), so a migration can index old versions.
    """
    out = {ids.document: "CFDocument"}
    for kind, section in (("area", "areas"), ("competency", "competencies"), ("level", "levels")):
        out |= {ids.of(kind, element["key"]): "CFItem" for element in content[section]}
    return out
