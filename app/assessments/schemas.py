"""API models of assessments: one rater's ratings of one subject against a framework version."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.pagination import Page
from app.schemas import JSON_NUMBER, KeyStr, Timestamp
from app.subjects.schemas import Ref

MAX_RATINGS_PER_ASSESSMENT = 300

RaterRole = Literal["self", "manager", "peer", "direct_report", "external", "calibrated"]
Evidence = Annotated[str, StringConstraints(max_length=4000, pattern=r"^[^\x00]*$")]


class FrameworkRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: KeyStr = Field(examples=["product-management"])
    version: Annotated[int, Field(ge=1, le=1_000_000), JSON_NUMBER] | None = Field(
        default=None, description="Default: the latest published version."
    )


class AssessmentRating(BaseModel):
    """One competency's rating within an assessment; numbers must be JSON numbers."""

    model_config = ConfigDict(extra="forbid")

    competency: KeyStr = Field(examples=["execution"])
    proficiency: Annotated[int, Field(ge=0, le=100), JSON_NUMBER] = Field(
        description="A value of the framework's scale."
    )
    evidence: Evidence | None = Field(
        default=None, description="What was observed (personal data)."
    )
    confidence: Annotated[float, Field(ge=0, le=1), JSON_NUMBER] | None = Field(
        default=None, description="Rater's confidence, 0–1."
    )


class AssessmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_ref: Ref
    framework: FrameworkRef
    rater_ref: Ref = Field(description="Your id of the rater (a person or a calibration panel).")
    rater_role: RaterRole
    assessed_at: Timestamp = Field(description="When the assessment was made (with offset).")
    ratings: list[AssessmentRating] = Field(min_length=1, max_length=MAX_RATINGS_PER_ASSESSMENT)


class RatingRead(BaseModel):
    competency: str
    proficiency: int
    evidence: str | None
    confidence: float | None


class AssessmentRead(BaseModel):
    id: uuid.UUID
    subject_ref: str
    framework: FrameworkRef
    rater_ref: str
    rater_role: RaterRole
    assessed_at: datetime
    created_at: datetime
    ratings: list[RatingRead]


class AssessmentPage(Page[AssessmentRead]):
    """One page of assessments."""
