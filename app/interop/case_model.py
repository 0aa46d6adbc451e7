"""The CASE 1.1 wire format: lenient models of what a CASE package holds, shared by both directions.

The models accept fields they do not declare, so the import can report them; the export writes
plain JSON-compatible data that conforms to the same shapes.
"""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# The key of this service's ``extensions`` objects in every CASE class.
EXT = "competencyLadder"


def normalized_string(text: str) -> str:
    """Collapse whitespace, as CASE NormalizedString fields require."""
    return " ".join(text.split())


# --- The wire format: lenient models; fields not declared here are kept and reported. ---------

Ident = Annotated[str, Field(min_length=1, max_length=500)]
Label = Annotated[str, Field(max_length=1000)]
Statement = Annotated[str, Field(max_length=100_000)]
Uri = Annotated[str, Field(max_length=2000)]
Number = Annotated[float, Field(allow_inf_nan=False)]
Extensions = dict[str, Any]
# CASE 1.1 makes a criterion level's extensions an array of objects (every other class's, one).
LevelExtensions = list[Extensions] | Extensions


class CaseObject(BaseModel):
    """A CASE object as read: undeclared fields are allowed so the import can report them."""

    model_config = ConfigDict(extra="allow")


class LinkURI(CaseObject):
    """A link to another CASE object: title, UUID identifier and resolvable URI."""

    title: Label = ""
    identifier: Ident
    uri: Uri = ""


class LinkGenURI(LinkURI):
    """An association end: like LinkURI, but the identifier need not be a UUID."""

    targetType: Label | None = None


class CFPckgDocument(CaseObject):
    """The framework document inside a CFPackage."""

    identifier: Ident
    uri: Uri = ""
    creator: Label | None = None
    title: Annotated[str, Field(min_length=1, max_length=1000)]
    description: Statement | None = None
    version: Label | None = None
    adoptionStatus: Label | None = None
    caseVersion: Label | None = None
    lastChangeDateTime: Label | None = None
    extensions: Extensions | None = None


class CFDocument(CFPckgDocument):
    """A framework document on its own, linking the package that holds it."""

    CFPackageURI: LinkURI | None = None


class CFPckgItem(CaseObject):
    """A competency or a grouping of competencies inside a CFPackage."""

    identifier: Ident
    uri: Uri = ""
    fullStatement: Statement
    abbreviatedStatement: Label | None = None
    humanCodingScheme: Label | None = None
    CFItemType: Label | None = None
    CFItemTypeURI: LinkURI | None = None
    listEnumeration: Label | None = None
    lastChangeDateTime: Label | None = None
    extensions: Extensions | None = None


class CFItem(CFPckgItem):
    """An item on its own, linking the document that holds it."""

    CFDocumentURI: LinkURI | None = None


class CFPckgAssociation(CaseObject):
    """A typed link between two nodes (items or documents)."""

    identifier: Ident
    uri: Uri = ""
    associationType: Annotated[str, Field(min_length=1, max_length=1000)]
    sequenceNumber: int | None = None
    originNodeURI: LinkGenURI
    destinationNodeURI: LinkGenURI
    lastChangeDateTime: Label | None = None
    extensions: Extensions | None = None


class CFItemType(CaseObject):
    """The definition of an item type label."""

    identifier: Ident
    uri: Uri = ""
    title: Label = ""
    description: Statement | None = None
    hierarchyCode: Label | None = None
    typeCode: Label | None = None
    lastChangeDateTime: Label | None = None
    extensions: Extensions | None = None


class CFDefinition(CaseObject):
    """A CFConcept, CFSubject, CFLicense or CFAssociationGrouping (read for its identifier)."""

    identifier: Ident
    uri: Uri = ""
    title: Label = ""


class CFDefinitions(CaseObject):
    """The vocabularies a package's items and associations refer to."""

    CFConcepts: list[CFDefinition] = Field(default_factory=list, max_length=5000)
    CFSubjects: list[CFDefinition] = Field(default_factory=list, max_length=5000)
    CFLicenses: list[CFDefinition] = Field(default_factory=list, max_length=5000)
    CFItemTypes: list[CFItemType] = Field(default_factory=list, max_length=5000)
    CFAssociationGroupings: list[CFDefinition] = Field(default_factory=list, max_length=5000)
    extensions: Extensions | None = None


# The package's field has the class's name; this alias keeps the annotation unambiguous.
_Definitions = CFDefinitions


class CFRubricCriterionLevel(CaseObject):
    """One degree of achievement of a rubric criterion."""

    identifier: Ident
    uri: Uri = ""
    description: Statement | None = None
    quality: Label | None = None
    score: Number | None = None
    feedback: Statement | None = None
    position: int | None = None
    rubricCriterionId: Ident | None = None
    lastChangeDateTime: Label | None = None
    extensions: LevelExtensions | None = None


class CFRubricCriterion(CaseObject):
    """One criterion of a rubric, optionally about one item."""

    identifier: Ident
    uri: Uri = ""
    category: Label | None = None
    description: Statement | None = None
    CFItemURI: LinkURI | None = None
    weight: Number | None = None
    position: int | None = None
    rubricId: Ident | None = None
    lastChangeDateTime: Label | None = None
    CFRubricCriterionLevels: list[CFRubricCriterionLevel] = Field(
        default_factory=list, max_length=100
    )
    extensions: Extensions | None = None


class CFRubric(CaseObject):
    """A rubric: criteria and their levels."""

    identifier: Ident
    uri: Uri = ""
    title: Label | None = None
    description: Statement | None = None
    lastChangeDateTime: Label | None = None
    CFRubricCriteria: list[CFRubricCriterion] = Field(default_factory=list, max_length=1000)
    extensions: Extensions | None = None


class CFPackage(CaseObject):
    """A whole CASE 1.1 framework: document, items, associations, definitions and rubrics."""

    CFDocument: CFPckgDocument
    CFItems: list[CFPckgItem] = Field(default_factory=list, max_length=5000)
    # Caps keep a body of (cap + 1) small elements under the 5 MB limit, so it gets a 422.
    CFAssociations: list[CFPckgAssociation] = Field(default_factory=list, max_length=10_000)
    CFDefinitions: _Definitions | None = None
    CFRubrics: list[CFRubric] = Field(default_factory=list, max_length=2000)
    extensions: Extensions | None = None


class CFDocumentSet(BaseModel):
    """The CASE list envelope of documents."""

    CFDocuments: list[CFDocument]
