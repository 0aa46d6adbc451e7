"""Domain errors of the scoring engine; they know nothing of HTTP (the API maps them to 422)."""


class ScoringError(ValueError):
    """Input the engine cannot score: an unknown key or an impossible parameter."""


class UnknownTrack(ScoringError):
    """A track no level of the framework belongs to."""


class UnknownLevel(ScoringError):
    """A level key the framework does not define."""


class UnknownCompetency(ScoringError):
    """A what-if override for a competency the framework does not define."""
