"""xAPI statements: the specification's rules for every field the service reads (no I/O).

A statement is checked as the xAPI specification (1.0.3 and IEEE 9274.1.1, "2.0") requires for
the fields used here: its id, the actor (exactly one inverse functional identifier), the verb
(an IRI), the object (an activity with an IRI id, or a statement reference), the result's score
and the timestamps (ISO 8601 with a zone). Anything wrong is a ``BadRequest`` naming the field.
"""

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.errors import BadRequest, FieldError

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
# Verbs that mean "done": the activity is recorded as completed.
COMPLETION_VERBS = frozenset(
    {
        "http://adlnet.gov/expapi/verbs/completed",
        "http://adlnet.gov/expapi/verbs/passed",
        "http://adlnet.gov/expapi/verbs/mastered",
    }
)
SUPPORTED_VERSIONS = re.compile(r"^(1\.0(\.\d+)?|2\.0(\.\d+)?)$")
# What the LRS sets itself: left out when two statements with one id are compared.
LRS_FIELDS = ("id", "authority", "stored", "version")

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\x00-\x20\x7f-\x9f]+$")
_IRL = re.compile(r"^https?://[^\x00-\x20\x7f-\x9f]+$", re.IGNORECASE)
_MBOX = re.compile(r"^mailto:[^@\x00-\x20\x7f-\x9f]+@[^@\x00-\x20\x7f-\x9f]+$")
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
# ISO 8601 date-time with seconds and a zone (Z or ±hh:mm), as xAPI requires.
_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE
)
MAX_IRI_LENGTH = 2000

STATEMENT_FIELDS = frozenset(
    {
        "id",
        "actor",
        "verb",
        "object",
        "result",
        "context",
        "timestamp",
        "stored",
        "authority",
        "version",
        "attachments",
    }
)
AGENT_FIELDS = frozenset({"objectType", "name", "mbox", "mbox_sha1sum", "openid", "account"})
IDENTIFIERS = ("mbox", "mbox_sha1sum", "openid", "account")
OBJECT_TYPES = frozenset({"Activity", "Agent", "Group", "StatementRef", "SubStatement"})

Loc = list[str | int]


def mbox_sha1(mbox: str) -> str:
    """xAPI's ``mbox_sha1sum``: the SHA-1 of the whole ``mailto:`` IRI, in hexadecimal."""
    return hashlib.sha1(mbox.encode()).hexdigest()  # noqa: S324 (the specification's hash)


def parse_uuid(value: str, loc: Loc) -> uuid.UUID:
    """A UUID in its 8-4-4-4-12 form, as xAPI ids are."""
    return _uuid(value, loc)


@dataclass(frozen=True, slots=True)
class Actor:
    """An agent's (or identified group's) one identifier, as ``kind`` and ``value``; accounts
    also carry their ``home_page`` (``value`` is the account name)."""

    kind: str
    value: str
    home_page: str | None = None
    group: bool = False

    @property
    def mbox_sha1sum(self) -> str | None:
        """SHA-1 of the mailbox IRI, for mbox and mbox_sha1sum identifiers."""
        if self.kind == "mbox":
            return mbox_sha1(self.value)
        if self.kind == "mbox_sha1sum":
            return self.value.lower()
        return None

    @property
    def label(self) -> str:
        """The identifier as one string: ``<homePage>|<name>`` for an account."""
        return f"{self.home_page}|{self.value}" if self.kind == "account" else self.value


@dataclass(frozen=True, slots=True)
class Statement:
    """What the service reads of one valid statement, and the statement itself."""

    id: uuid.UUID
    actor: Actor | None  # None: an anonymous group
    verb: str
    object_type: str
    object_id: str | None  # an activity's IRI or a referenced statement's id
    timestamp: datetime | None
    scaled_score: float | None
    content: dict[str, Any]
    digest: str

    @property
    def voids(self) -> uuid.UUID | None:
        """The statement this one voids, if it is a voiding statement."""
        if self.verb == VOIDED and self.object_type == "StatementRef" and self.object_id:
            return uuid.UUID(self.object_id)
        return None


def _bad(loc: Loc, msg: str, kind: str = "value_error") -> BadRequest:
    return BadRequest(
        f"Breaks the xAPI rules: {'.'.join(str(p) for p in loc) or 'statement'} {msg}.",
        errors=[FieldError(loc=loc, msg=msg, type=kind)],
    )


def _object(value: Any, loc: Loc) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(loc, "must be a JSON object", "type_error")
    return value


def _string(value: Any, loc: Loc, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
    if not isinstance(value, str) or not value:
        raise _bad(loc, "must be a non-empty string", "type_error")
    if len(value) > MAX_IRI_LENGTH:
        raise _bad(loc, f"must be at most {MAX_IRI_LENGTH} characters", "too_long")
    if pattern is not None and not pattern.match(value):
        raise _bad(loc, f"must be {what}", "format")
    return value


def _uuid(value: Any, loc: Loc) -> uuid.UUID:
    return uuid.UUID(_string(value, loc, _UUID, "a UUID (8-4-4-4-12 hexadecimal digits)"))


def parse_timestamp(value: Any, loc: Loc) -> datetime:
    """An ISO 8601 timestamp with a zone; xAPI refuses one without."""
    text = _string(value, loc, _TIMESTAMP, "an ISO 8601 timestamp with a time zone")
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise _bad(loc, "must be an ISO 8601 timestamp with a time zone", "format") from None
    if moment.tzinfo is None:  # the pattern demands a zone; kept as the one rule's guard
        raise _bad(loc, "must carry a time zone", "format")
    return moment


def _language_map(value: Any, loc: Loc) -> None:
    for tag, text in _object(value, loc).items():
        if not isinstance(text, str):
            raise _bad([*loc, tag], "must be a string", "type_error")


def parse_actor(value: Any, loc: Loc) -> Actor | None:
    """An Agent or Group; an agent (and an identified group) has exactly one identifier."""
    agent = _object(value, loc)
    kind = agent.get("objectType", "Agent")
    if kind not in ("Agent", "Group"):
        raise _bad([*loc, "objectType"], "must be 'Agent' or 'Group'", "enum")
    allowed = AGENT_FIELDS | ({"member"} if kind == "Group" else set())
    for name in agent:
        if name not in allowed:
            raise _bad([*loc, name], f"is not a property of an {kind}", "extra_forbidden")
    if "name" in agent and not isinstance(agent["name"], str):
        raise _bad([*loc, "name"], "must be a string", "type_error")
    present = [name for name in IDENTIFIERS if name in agent]
    if len(present) > 1:
        raise _bad(loc, f"has {len(present)} identifiers ({', '.join(present)}); exactly one")
    if kind == "Group":
        if "member" in agent:
            members = agent["member"]
            if not isinstance(members, list):
                raise _bad([*loc, "member"], "must be a list of agents", "type_error")
            for i, member in enumerate(members):
                if _object(member, [*loc, "member", i]).get("objectType", "Agent") != "Agent":
                    raise _bad([*loc, "member", i, "objectType"], "must be 'Agent'", "enum")
                parse_actor(member, [*loc, "member", i])
        if not present:
            if not agent.get("member"):
                raise _bad(loc, "an anonymous group must list its members", "missing")
            return None
    if not present:
        raise _bad(loc, "needs exactly one identifier: mbox, mbox_sha1sum, openid or account")
    name = present[0]
    where = [*loc, name]
    group = kind == "Group"
    if name == "mbox":
        return Actor("mbox", _string(agent[name], where, _MBOX, "a mailto: IRI"), group=group)
    if name == "mbox_sha1sum":
        sha1 = _string(agent[name], where, _SHA1, "40 hexadecimal digits")
        return Actor("mbox_sha1sum", sha1.lower(), group=group)
    if name == "openid":
        return Actor("openid", _string(agent[name], where, _IRI, "an absolute URI"), group=group)
    account = _object(agent[name], where)
    for field in account:
        if field not in ("homePage", "name"):
            raise _bad([*where, field], "is not a property of an account", "extra_forbidden")
    if "homePage" not in account or "name" not in account:
        raise _bad(where, "needs both homePage and name", "missing")
    home = _string(account["homePage"], [*where, "homePage"], _IRL, "an http(s) IRL")
    account_name = _string(account["name"], [*where, "name"])
    return Actor("account", account_name, home_page=home, group=group)


def _statement_object(value: Any, verb: str) -> tuple[str, str | None]:
    loc: Loc = ["object"]
    obj = _object(value, loc)
    kind = obj.get("objectType", "Activity")
    if kind not in OBJECT_TYPES:
        raise _bad([*loc, "objectType"], f"must be one of {', '.join(sorted(OBJECT_TYPES))}")
    if verb == VOIDED and kind != "StatementRef":
        raise _bad([*loc, "objectType"], "a voiding statement's object must be a StatementRef")
    if kind == "Activity":
        for name in obj:
            if name not in ("objectType", "id", "definition"):
                raise _bad([*loc, name], "is not a property of an Activity", "extra_forbidden")
        if "id" not in obj:
            raise _bad([*loc, "id"], "an activity needs an IRI id", "missing")
        iri = _string(obj["id"], [*loc, "id"], _IRI, "an absolute IRI")
        if "definition" in obj:
            _object(obj["definition"], [*loc, "definition"])
        return kind, iri
    if kind == "StatementRef":
        for name in obj:
            if name not in ("objectType", "id"):
                raise _bad([*loc, name], "is not a property of a StatementRef", "extra_forbidden")
        return kind, str(_uuid(obj.get("id"), [*loc, "id"]))
    if kind in ("Agent", "Group"):
        parse_actor(obj, loc)
        return kind, None
    return kind, None  # a SubStatement: nothing in it is read


def _scaled_score(value: Any) -> float | None:
    result = _object(value, ["result"])
    for flag in ("success", "completion"):
        if flag in result and not isinstance(result[flag], bool):
            raise _bad(["result", flag], "must be true or false", "type_error")
    if "score" not in result:
        return None
    score = _object(result["score"], ["result", "score"])
    for name, number in score.items():
        if name not in ("scaled", "raw", "min", "max"):
            raise _bad(["result", "score", name], "is not a property of a score", "extra_forbidden")
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise _bad(["result", "score", name], "must be a number", "type_error")
    scaled = score.get("scaled")
    if scaled is not None and not -1 <= scaled <= 1:
        raise _bad(["result", "score", "scaled"], "must lie between -1 and 1", "range")
    low, high, raw = score.get("min"), score.get("max"), score.get("raw")
    if low is not None and high is not None and low >= high:
        raise _bad(["result", "score", "max"], "must be greater than min", "range")
    if raw is not None and ((low is not None and raw < low) or (high is not None and raw > high)):
        raise _bad(["result", "score", "raw"], "must lie between min and max", "range")
    return float(scaled) if scaled is not None else None


def digest(statement: dict[str, Any]) -> str:
    """SHA-256 of the statement without what the LRS sets (id, authority, stored, version):
    two statements with one id and the same digest are the same statement."""
    compared = {k: v for k, v in statement.items() if k not in LRS_FIELDS}
    text = json.dumps(compared, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def parse_statement(value: Any, statement_id: uuid.UUID | None = None) -> Statement:
    """Check one statement; ``statement_id`` is the id the request names (PUT), which a
    statement's own id must equal. A statement without an id gets a new one."""
    statement = _object(value, [])
    for name, field in statement.items():
        if name not in STATEMENT_FIELDS:
            raise _bad([name], "is not a property of a statement", "extra_forbidden")
        if field is None:
            raise _bad([name], "must not be null", "type_error")
    if "id" in statement:
        own = _uuid(statement["id"], ["id"])
        if statement_id is not None and own != statement_id:
            raise _bad(["id"], "differs from the statementId parameter")
        statement_id = own
    if "version" in statement:
        version = _string(statement["version"], ["version"])
        if not SUPPORTED_VERSIONS.match(version):
            raise _bad(["version"], "must be 1.0.x or 2.0.x", "enum")
    for name in ("actor", "verb", "object"):
        if name not in statement:
            raise _bad([name], "is required", "missing")
    actor = parse_actor(statement["actor"], ["actor"])
    verb_object = _object(statement["verb"], ["verb"])
    for name in verb_object:
        if name not in ("id", "display"):
            raise _bad(["verb", name], "is not a property of a verb", "extra_forbidden")
    if "id" not in verb_object:
        raise _bad(["verb", "id"], "a verb needs an IRI id", "missing")
    verb = _string(verb_object["id"], ["verb", "id"], _IRI, "an absolute IRI")
    if "display" in verb_object:
        _language_map(verb_object["display"], ["verb", "display"])
    object_type, object_id = _statement_object(statement["object"], verb)
    timestamp = (
        parse_timestamp(statement["timestamp"], ["timestamp"]) if "timestamp" in statement else None
    )
    if "stored" in statement:
        parse_timestamp(statement["stored"], ["stored"])
    scaled = _scaled_score(statement["result"]) if "result" in statement else None
    if "context" in statement:
        context = _object(statement["context"], ["context"])
        if "registration" in context:
            _uuid(context["registration"], ["context", "registration"])
    if "authority" in statement:
        _object(statement["authority"], ["authority"])
    if "attachments" in statement and not isinstance(statement["attachments"], list):
        raise _bad(["attachments"], "must be a list", "type_error")
    return Statement(
        id=statement_id or uuid.uuid4(),
        actor=actor,
        verb=verb,
        object_type=object_type,
        object_id=object_id,
        timestamp=timestamp,
        scaled_score=scaled,
        content=statement,
        digest=digest(statement),
    )


def parse_batch(value: Any) -> list[Statement]:
    """One statement or a list of them; a list naming one id twice is refused whole."""
    if isinstance(value, list):
        if not value:
            raise _bad([], "an empty list holds no statement", "missing")
        parsed = []
        for i, item in enumerate(value):
            try:
                parsed.append(parse_statement(item))
            except BadRequest as exc:
                raise _prefixed(exc, i) from None
        seen: set[uuid.UUID] = set()
        for i, st in enumerate(parsed):
            if st.id in seen:
                raise _bad([i, "id"], "names a statement already in this list", "duplicate")
            seen.add(st.id)
        return parsed
    return [parse_statement(value)]


def _prefixed(exc: BadRequest, index: int) -> BadRequest:
    errors = [FieldError(loc=[index, *e.loc], msg=e.msg, type=e.type) for e in exc.errors or []]
    return BadRequest(f"Statement {index}: {exc.detail}", errors=errors)


def check_version_header(value: str | None) -> str:
    """The X-Experience-API-Version a request must send (1.0.x or 2.0.x); the version to
    answer with."""
    if value is None:
        raise BadRequest(
            "Send the X-Experience-API-Version header (1.0.3 or 2.0.0).",
            errors=[
                FieldError(
                    loc=["header", "X-Experience-API-Version"], msg="missing", type="missing"
                )
            ],
        )
    if not SUPPORTED_VERSIONS.match(value.strip()):
        raise BadRequest(
            f"X-Experience-API-Version {value[:20]!r} is not supported: send 1.0.x or 2.0.x.",
            errors=[
                FieldError(
                    loc=["header", "X-Experience-API-Version"], msg="unsupported", type="enum"
                )
            ],
        )
    return answer_version(value)


def answer_version(value: str | None) -> str:
    """The X-Experience-API-Version of an answer to a request that sent ``value``: 2.0.0 to a
    2.0.x client, 1.0.3 to every other (error answers included)."""
    sent = (value or "").strip()
    return "2.0.0" if SUPPORTED_VERSIONS.match(sent) and sent.startswith("2") else "1.0.3"


XAPI_PREFIX = "/xapi/"
VERSION_HEADER = "X-Experience-API-Version"


def version_header(request_headers: dict[bytes, bytes]) -> tuple[bytes, bytes]:
    """The version header of any answer under /xapi/, from the request's raw headers."""
    sent = request_headers.get(VERSION_HEADER.lower().encode())
    value = answer_version(sent.decode("latin-1") if sent is not None else None)
    return (VERSION_HEADER.lower().encode(), value.encode())
