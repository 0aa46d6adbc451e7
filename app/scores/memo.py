"""Rendered score responses kept in memory, each valid only for the fingerprint it was made from.

A score changes only when its inputs do: the subject (its revision), its assessments (their
revision, or a digest of the ratings where no trigger keeps one), the framework version it is
scored against (id and revision) and the set of ratings inside the scoring window at the moment
asked about. The score service reads the current fingerprint with the ratings on every request
(one statement, through the ordinary route) and uses a remembered rendering only when the
fingerprint is the same and the moment lies in the span where the same ratings count. The
rendering is kept with its moment fields cut out, so each answer carries its request's moment.
"""

import hashlib
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import TypeAdapter

from app.observability import metrics
from app.scoring import EARLIEST, Rating, window_start

# What the score depends on besides the moment: subject id and revision, assessments revision
# (or digest), framework version id and revision, and the latest rater-effect estimate recorded
# for the version ("id:revision", None when there is none).
Fingerprint = tuple[uuid.UUID, int, int, uuid.UUID, int, str | None]
# What a request chooses besides the subject: framework key, version number, track.
Variant = tuple[str | None, int | None, str | None]

# Rendered in place of the real moment, then replaced per request. No rating of a current
# request can carry it, and a rendering is refused unless it appears exactly as expected.
SENTINEL = datetime(1901, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
_MOMENT = TypeAdapter(datetime)
_LATEST = datetime.max.replace(tzinfo=UTC)
# However valid, a remembered score is recomputed after this long, so a worker that never reads
# an erased person again still lets go of their score.
MAX_AGE = timedelta(minutes=10)
_SWEEP_SECONDS = 60.0


def _json_moment(moment: datetime) -> bytes:
    """A moment exactly as the API renders it, as a JSON string."""
    return _MOMENT.dump_json(moment)


def stable_span(
    ratings: Sequence[Rating], window_days: int, moment: datetime
) -> tuple[datetime, datetime]:
    """The span [since, until) around ``moment`` in which the same ratings are inside the window.

    A rating counts at ``as_of`` when ``assessed_at <= as_of < assessed_at + window``, so the
    set of counted ratings, and with it every number of the score, changes only at those edges.
    """
    window = timedelta(days=window_days)
    since, until = EARLIEST, _LATEST
    for rating in ratings:
        for edge in (rating.assessed_at, rating.assessed_at + window):
            if edge <= moment:
                since = max(since, edge)
            else:
                until = min(until, edge)
    return since, until


def make_etag(
    fingerprint: Fingerprint, variant: Sequence[object], span: tuple[datetime, datetime] | None
) -> str:
    """A weak ETag: the same for every moment in which the read's numbers stay the same (for
    every moment at all when ``span`` is None: a read with no moment of its own, the history).

    ``variant`` is what the request chose besides the subject; reads other than the score lead
    it with their own name, so no read's ETag can stand for another's body.
    """
    moments = () if span is None else (span[0].isoformat(), span[1].isoformat())
    parts = (*fingerprint, *variant, *moments)
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).hexdigest()
    return f'W/"{digest}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True when an If-None-Match header names this ETag (weak comparison, RFC 9110 13.1.2)."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


@dataclass(frozen=True, slots=True)
class Template:
    """A rendered score with its three moment fields cut out."""

    pieces: tuple[bytes, ...]
    # For each gap between pieces: 0 = as_of, 1 = window_start.
    slots: tuple[int, ...]
    window: timedelta

    @classmethod
    def cut(cls, body: bytes, window: timedelta) -> "Template | None":
        """Split a body rendered at the sentinel moment; None if it does not split cleanly."""
        as_of, start = _json_moment(SENTINEL), _json_moment(SENTINEL - window)
        parts = re.split(b"(" + re.escape(as_of) + b"|" + re.escape(start) + b")", body)
        pieces, found = tuple(parts[0::2]), parts[1::2]
        slots = tuple(0 if f == as_of else 1 for f in found)
        if sorted(slots) != [0, 0, 1]:
            return None
        return cls(pieces, slots, window)

    def fill(self, moment: datetime) -> bytes:
        """The body as rendered at ``moment``."""
        values = (_json_moment(moment), _json_moment(window_start(moment, self.window.days)))
        out = [self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            out += (values[slot], piece)
        return b"".join(out)

    @property
    def size(self) -> int:
        return sum(map(len, self.pieces))


@dataclass(frozen=True, slots=True)
class Entry:
    """A rendering, the fingerprint it was made from, and the span of moments it is valid for."""

    fingerprint: Fingerprint
    since: datetime
    until: datetime
    etag: str
    template: Template
    created: float  # time.monotonic()

    def valid_at(self, moment: datetime, now: float) -> bool:
        return self.since <= moment < self.until and now - self.created < MAX_AGE.total_seconds()


SubjectKey = tuple[uuid.UUID, str]


class ScoreMemo:
    """Rendered scores per (tenant, subject ref) and variant, least recently used out first,
    bounded in bytes (0 turns it off). ``hits`` and ``misses`` count the lookups."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._subjects: OrderedDict[SubjectKey, dict[Variant, Entry]] = OrderedDict()
        self._swept = time.monotonic()
        self.clock = time.monotonic

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return sum(map(len, self._subjects.values()))

    def get(self, key: SubjectKey, variant: Variant, moment: datetime) -> Entry | None:
        """The entry valid at ``moment`` (its fingerprint is still to be checked), or None."""
        entries = self._subjects.get(key)
        entry = entries.get(variant) if entries is not None else None
        if entry is None or not entry.valid_at(moment, self.clock()):
            return None
        self._subjects.move_to_end(key)
        return entry

    def count(self, hit: bool) -> None:
        """Count a lookup whose fingerprint was checked against the database."""
        metrics.record_score_memo(hit)
        if hit:
            self.hits += 1
        else:
            self.misses += 1

    def forget(self, key: SubjectKey) -> None:
        """Drop everything remembered about a subject (it was erased, or is unknown)."""
        entries = self._subjects.pop(key, None)
        if entries is not None:
            self.bytes -= sum(e.template.size for e in entries.values())

    def put(self, key: SubjectKey, variant: Variant, entry: Entry) -> None:
        """Remember a rendering; evict the least recently used beyond the byte budget."""
        if not self.enabled or entry.template.size > self.max_bytes:
            return
        self._sweep()
        entries = self._subjects.setdefault(key, {})
        old = entries.pop(variant, None)
        if old is not None:
            self.bytes -= old.template.size
        entries[variant] = entry
        self.bytes += entry.template.size
        self._subjects.move_to_end(key)
        while self.bytes > self.max_bytes:
            _, evicted = self._subjects.popitem(last=False)
            self.bytes -= sum(e.template.size for e in evicted.values())

    def _sweep(self) -> None:
        """Now and then, let go of entries past their maximum age even if never read again."""
        now = self.clock()
        if now - self._swept < _SWEEP_SECONDS:
            return
        self._swept = now
        limit = MAX_AGE.total_seconds()
        for key in list(self._subjects):
            entries = self._subjects[key]
            for variant in [v for v, e in entries.items() if now - e.created >= limit]:
                self.bytes -= entries.pop(variant).template.size
            if not entries:
                del self._subjects[key]
