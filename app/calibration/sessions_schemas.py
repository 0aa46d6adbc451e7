"""API models of calibration sessions: the snapshot, proposed adjustments, and the grid."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.assessments.schemas import FrameworkRef
from app.calibration.schemas import RaterEffectsResponse, Thresholds
from app.cohorts.schemas import MAX_COHORT_SUBJECTS, CohortFilter
from app.pagination import Page
from app.schemas import JSON_NUMBER, KeyStr, Timestamp
from app.subjects.schemas import Ref

Text = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]*$")]
Reason = Annotated[
    str, StringConstraints(min_length=1, max_length=4000, pattern=r"^[^\x00]*\S[^\x00]*$")
]
SessionStatus = Literal["open", "closed"]


class SessionCreate(BaseModel):
    """A cohort by filter or by list (neither: the whole tenant), one published framework
    version and one window of ratings: the snapshot is taken when the session is created."""

    model_config = ConfigDict(extra="forbid")

    name: Text = Field(examples=["Q4 product calibration"])
    framework: FrameworkRef
    subject_refs: Annotated[list[Ref], Field(max_length=MAX_COHORT_SUBJECTS)] | None = Field(
        default=None, description=f"At most {MAX_COHORT_SUBJECTS} refs, every one known."
    )
    filter: CohortFilter | None = None
    as_of: Timestamp | None = Field(default=None, description="End of the window; now.")
    window_days: Annotated[int, Field(ge=1, le=36_500), JSON_NUMBER] | None = Field(
        default=None, description="Default: the framework's window."
    )
    thresholds: Thresholds = Field(default_factory=Thresholds)


class SessionSummary(BaseModel):
    id: uuid.UUID
    name: str
    framework: FrameworkRef
    as_of: datetime
    window_days: int
    status: SessionStatus
    people: int = Field(description="People in the snapshot.")
    proposals: int = Field(description="Standing (not withdrawn) proposals.")
    calibrated_ratings: int = Field(description="Ratings written when it closed.")
    created_by: str
    created_at: datetime
    closed_by: str | None
    closed_at: datetime | None


class SessionPage(Page[SessionSummary]):
    """One page of calibration sessions, newest first."""


class Member(BaseModel):
    """One person's score when the snapshot was taken."""

    subject_ref: str
    attained_level: str | None
    next_level: str | None
    level_index: float
    readiness: dict[str, float] = Field(description="Readiness R_L per level key.")
    values: list[float | None] = Field(description="a_c per competency (null: unrated).")
    fair_values: list[float | None] = Field(description="a_c with rater effects removed.")
    fair_level_index: float | None


class SessionRead(SessionSummary):
    scope: CohortFilter | None = Field(description="The filter the cohort was taken with.")
    competencies: list[str] = Field(description="The order of each member's values.")
    members: list[Member]
    rater_effects: RaterEffectsResponse = Field(
        description="Rater effects at the snapshot; per rater the distribution of their "
        "ratings beside the cohort's (the per-manager distribution). Per-person parts are "
        "in members."
    )


class ProposalCreate(BaseModel):
    """A proposed value for one person's competency: proposing again replaces it."""

    model_config = ConfigDict(extra="forbid")

    subject_ref: Ref
    competency: KeyStr = Field(examples=["execution"])
    value: Annotated[int, Field(ge=0, le=100), JSON_NUMBER] = Field(
        description="A value of the framework's scale."
    )
    reason: Reason = Field(description="Why (personal data: goes with the person).")
    proposer: Text | None = Field(default=None, description="Default: the API key's id.")


class ProposalRead(BaseModel):
    subject_ref: str
    competency: str
    value: int
    current_value: float | None = Field(description="a_c in the snapshot.")
    reason: str
    proposer: str
    status: Literal["standing", "withdrawn"]
    created_at: datetime
    updated_at: datetime
    withdrawn_at: datetime | None


class ProposalPage(Page[ProposalRead]):
    """One page of proposals, by person then competency."""


class ProposalImport(BaseModel):
    rows: int = Field(description="Data rows in the file.")
    proposed: int = Field(description="Rows with a proposed value: each stored as a proposal.")
    unchanged: int = Field(description="Rows without a proposed value (left as they are).")


class GridRow(BaseModel):
    subject_ref: str
    competency: str
    current_value: float | None
    fair_value: float | None
    proposed_value: int | None
    reason: str | None
    proposer: str | None


class Grid(BaseModel):
    session_id: uuid.UUID
    status: SessionStatus
    rows: list[GridRow] = Field(description="People × competencies, in the snapshot's order.")
