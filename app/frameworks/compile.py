"""Turn a validated framework document into the scoring engine's plain value types."""

from types import MappingProxyType

from app.frameworks.document import FrameworkDocument, scale_step
from app.scoring import model as sm


def compile_framework(doc: FrameworkDocument, version: int) -> sm.Framework:
    """Compile one framework version for scoring (pure; cache the result per immutable version)."""
    levels = {lv.key: lv for lv in doc.levels}
    settings = sm.ScoringSettings(
        readiness_threshold=doc.settings.readiness_threshold,
        gap_tolerance=doc.settings.gap_tolerance,
        window_days=doc.settings.window_days,
        # Merged with the defaults, as a request's settings are: only an explicit 0 drops a role.
        role_weights=MappingProxyType(
            {**sm.DEFAULT_ROLE_WEIGHTS, **{str(k): w for k, w in doc.settings.role_weights.items()}}
        ),
        gap_tolerance_mode=doc.settings.gap_tolerance_mode,
        rater_adjustment=doc.settings.rater_adjustment,
    )
    return sm.Framework(
        key=doc.key,
        version=version,
        scale_min=min(p.value for p in doc.scale),
        scale_max=max(p.value for p in doc.scale),
        levels=tuple(
            sm.Level(key=lv.key, name=lv.name, rank=lv.rank, track=lv.track)
            for lv in sorted(doc.levels, key=lambda lv: (lv.rank, lv.key))
        ),
        competencies=tuple(
            sm.Competency(key=c.key, name=c.name, area=c.area, weight=c.weight)
            for c in doc.competencies
        ),
        expectations=tuple(
            sm.Expectation(
                competency=c.key,
                level=level_key,
                required=exp.required,
                critical=exp.critical,
                indicators=tuple(exp.indicators),
            )
            for c in doc.competencies
            for level_key, exp in c.expectations.items()
        ),
        area_emphasis=MappingProxyType(
            {a.key: MappingProxyType(dict(a.emphasis)) for a in doc.areas if a.emphasis}
        ),
        activities=tuple(
            sm.Activity(
                key=a.key,
                title=a.title,
                kind=a.kind,
                gains=MappingProxyType(dict(a.develops)),
                effort_hours=a.effort_hours,
                band_min_rank=levels[a.level_band.from_level].rank,
                band_max_rank=levels[a.level_band.to_level].rank,
                url=a.url,
                iri=a.iri,
            )
            for a in doc.activities
        ),
        settings=settings,
        scale_step=scale_step(doc),
        cumulative_indicators=doc.settings.cumulative_indicators,
    )
