"""The xAPI statement rules for the fields the service reads, without HTTP or a database."""

import uuid
from typing import Any

import pytest

from app.errors import BadRequest
from app.xapi.statements import check_version_header, digest, mbox_sha1, parse_statement

IRI = "https://lms.example.com/courses/1"
VERB = {"id": "http://adlnet.gov/expapi/verbs/completed"}


def base(**extra: Any) -> dict[str, Any]:
    return {
        "actor": {"mbox": "mailto:ada@example.com"},
        "verb": VERB,
        "object": {"id": IRI},
        **extra,
    }


def refused(statement: Any) -> list[str | int]:
    with pytest.raises(BadRequest) as caught:
        parse_statement(statement)
    assert caught.value.errors
    return caught.value.errors[0].loc


def test_a_minimal_statement_is_read() -> None:
    st = parse_statement(base())
    assert st.actor is not None and st.actor.kind == "mbox"
    assert st.actor.mbox_sha1sum == mbox_sha1("mailto:ada@example.com")
    assert (st.verb, st.object_type, st.object_id, st.timestamp) == (
        VERB["id"],
        "Activity",
        IRI,
        None,
    )
    assert st.voids is None
    assert isinstance(st.id, uuid.UUID)


@pytest.mark.parametrize(
    ("statement", "loc"),
    [
        (
            base(
                actor={"objectType": "Group", "mbox": "mailto:a@x.org", "openid": "https://x.org/a"}
            ),
            ["actor"],
        ),
        (base(actor={"objectType": "Group"}), ["actor"]),
        (
            base(actor={"objectType": "Group", "member": [{"objectType": "Group", "member": []}]}),
            ["actor", "member", 0, "objectType"],
        ),
        (base(actor={"objectType": "Person", "mbox": "mailto:a@x.org"}), ["actor", "objectType"]),
        (base(actor={"mbox_sha1sum": "xyz"}), ["actor", "mbox_sha1sum"]),
        (base(actor={"openid": "not a uri"}), ["actor", "openid"]),
        (
            base(actor={"account": {"homePage": "ftp://x.org", "name": "a"}}),
            ["actor", "account", "homePage"],
        ),
        (
            base(actor={"account": {"homePage": "https://x.org", "name": "a", "id": 1}}),
            ["actor", "account", "id"],
        ),
        (base(verb={"id": IRI, "display": {"en-US": 3}}), ["verb", "display", "en-US"]),
        (base(object={"objectType": "Thing", "id": IRI}), ["object", "objectType"]),
        (base(object={"objectType": "StatementRef", "id": "nope"}), ["object", "id"]),
        (base(version="0.95"), ["version"]),
        (base(stored="2026-10-20 09:30:00"), ["stored"]),
        (base(timestamp="2026-13-45T09:30:00Z"), ["timestamp"]),
        (base(context={"registration": "abc"}), ["context", "registration"]),
        (base(result={"success": "yes"}), ["result", "success"]),
        (base(result={"score": {"raw": 11, "min": 0, "max": 10}}), ["result", "score", "raw"]),
        (base(result={"score": {"scaled": True}}), ["result", "score", "scaled"]),
        ([], []),
    ],
)
def test_rule_breaking_fields_are_named(statement: Any, loc: list[str | int]) -> None:
    assert refused(statement) == loc


def test_groups_substatements_and_references_are_read() -> None:
    anonymous = parse_statement(
        base(actor={"objectType": "Group", "member": [{"mbox": "mailto:a@x.org"}]})
    )
    assert anonymous.actor is None
    identified = parse_statement(
        base(actor={"objectType": "Group", "account": {"homePage": "https://x.org", "name": "t"}})
    )
    assert (
        identified.actor is not None
        and identified.actor.group
        and identified.actor.label == "https://x.org|t"
    )
    target = str(uuid.uuid4())
    voiding = parse_statement(
        base(
            verb={"id": "http://adlnet.gov/expapi/verbs/voided"},
            object={"objectType": "StatementRef", "id": target},
        )
    )
    assert voiding.voids == uuid.UUID(target)
    sub = parse_statement(
        base(object={"objectType": "SubStatement", "actor": {}, "verb": {}, "object": {}})
    )
    assert sub.object_type == "SubStatement" and sub.object_id is None


def test_timestamps_need_a_zone_and_keep_it() -> None:
    st = parse_statement(base(timestamp="2026-10-20T11:30:00.250+02:00"))
    assert st.timestamp is not None and st.timestamp.utcoffset() is not None
    assert st.timestamp.isoformat() == "2026-10-20T11:30:00.250000+02:00"


def test_the_digest_ignores_what_the_lrs_sets() -> None:
    plain = base()
    assert digest(plain) == digest(
        {**plain, "id": str(uuid.uuid4()), "stored": "x", "version": "1.0.0"}
    )
    assert digest(plain) != digest(base(timestamp="2026-10-20T09:30:00Z"))


@pytest.mark.parametrize(
    ("sent", "answer"),
    [("1.0.0", "1.0.3"), ("1.0.3", "1.0.3"), ("1.0", "1.0.3"), ("2.0.0", "2.0.0")],
)
def test_versions_1_0_x_and_2_0_are_spoken(sent: str, answer: str) -> None:
    assert check_version_header(sent) == answer


@pytest.mark.parametrize("sent", [None, "0.95", "1.1.0", "3.0", ""])
def test_other_versions_are_refused(sent: str | None) -> None:
    with pytest.raises(BadRequest):
        check_version_header(sent)
