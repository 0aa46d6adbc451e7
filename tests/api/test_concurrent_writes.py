"""Concurrent writes on a real connection pool: each one is stored or refused, none answers 5xx.

On the embedded SQLite store a write request's transaction takes the database's write lock when
it begins (BEGIN IMMEDIATE), so a second writer waits for the first (up to the busy timeout)
instead of failing when it tries to upgrade a read snapshot another writer has since moved past.
"""

import asyncio
from typing import Any

import httpx
import pytest

from tests.api.test_subjects_assessments import assessment, subject
from tests.calibration.test_sessions_race import racing  # noqa: F401 (a fixture)
from tests.conftest import Tenant
from tests.factories import small_framework

pytestmark = pytest.mark.anyio

WRITERS = 12


async def audit_events(
    client: httpx.AsyncClient, tenant: Tenant, action: str, **params: str
) -> int:
    """How many audit events of ``action`` (and ``params``) the tenant has."""
    r = await client.get(
        "/v1/audit-events", params={"action": action, **params}, headers=tenant.headers
    )
    assert r.status_code == 200, r.text
    return len(r.json()["items"])


async def test_concurrent_writers_all_succeed(racing: tuple[httpx.AsyncClient, Tenant]) -> None:  # noqa: F811
    client, tenant = racing
    h = tenant.headers
    created = await asyncio.gather(
        *(
            client.post("/v1/subjects", json=subject(f"writer-{n}"), headers=h)
            for n in range(WRITERS)
        )
    )
    assert [r.status_code for r in created] == [201] * WRITERS, [r.text for r in created]
    # Every one reads the subject (a snapshot), then writes: the pattern that lost its snapshot.
    rated = await asyncio.gather(
        *(
            client.post(
                "/v1/assessments",
                json=assessment(f"writer-{n % 3}", rater=f"mgr-{n}", when="2026-10-01T09:00:00Z"),
                headers=h,
            )
            for n in range(WRITERS)
        )
    )
    assert [r.status_code for r in rated] == [201] * WRITERS, [r.text for r in rated]
    listed = await client.get("/v1/assessments", params={"limit": 200}, headers=h)
    mine = [a for a in listed.json()["items"] if a["rater_ref"].startswith("mgr-")]
    assert len(mine) == WRITERS


# Creations whose uniqueness a concurrent request can win between the check and the insert:
# (path, body). Each is sent five times at once.
CREATIONS: dict[str, tuple[str, Any]] = {
    "subject": ("/v1/subjects", subject("twin")),
    "subjects in bulk": ("/v1/subjects/bulk", [subject("twin")]),
    "framework": ("/v1/frameworks", small_framework(key="twin-ladder")),
    "framework import": ("/v1/frameworks/import", small_framework(key="twin-ladder")),
    "clone": ("/v1/frameworks/product-management/clone", {"key": "twin-ladder"}),
    "completed activity": (
        "/v1/subjects/writer-0/completed-activities",
        {"activity": "pm-course", "completed_at": "2026-10-20T00:00:00Z"},
    ),
}


@pytest.mark.parametrize("creation", list(CREATIONS))
async def test_a_creation_raced_by_its_twin_is_made_once_and_the_rest_refused(
    racing: tuple[httpx.AsyncClient, Tenant],  # noqa: F811
    creation: str,
) -> None:
    """One request creates; the others are refused with 409 (or, for a bulk request that sees
    the winner's row before writing, its item-level 422), never 500, and store nothing."""
    client, tenant = racing
    h = tenant.headers
    assert (
        await client.post("/v1/subjects", json=subject("writer-0"), headers=h)
    ).status_code == 201
    path, body = CREATIONS[creation]
    answers = await asyncio.gather(*(client.post(path, json=body, headers=h) for _ in range(5)))
    codes = sorted(a.status_code for a in answers)
    assert codes[0] == 201 and codes.count(201) == 1, [a.text for a in answers]
    refused = {409, 422} if creation == "subjects in bulk" else {409}
    for answer in answers:
        if answer.status_code != 201:
            assert answer.status_code in refused, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
    # Sent again now, the request is refused the same way.
    again = await client.post(path, json=body, headers=h)
    assert again.status_code in refused, again.text


async def test_a_draft_published_by_two_requests_at_once_is_published_once(
    racing: tuple[httpx.AsyncClient, Tenant],  # noqa: F811
) -> None:
    """Of concurrent publishes of one draft, one publishes and the rest get the 409 a later
    publish gets: one audit event, one announcement, not one per request."""
    client, tenant = racing
    h = tenant.headers
    r = await client.post(
        "/v1/frameworks/product-management/clone", json={"key": "our-ladder"}, headers=h
    )
    assert r.status_code == 201, r.text
    url = "/v1/frameworks/our-ladder/versions/1/publish"
    answers = await asyncio.gather(*(client.post(url, headers=h) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409], [a.text for a in answers]
    assert (
        await audit_events(client, tenant, "framework_version.published", object_id="our-ladder")
        == 1
    )
    assert (await client.post(url, headers=h)).status_code == 409


# What is created, then deleted four times at once: (path, body, where it is, audit action).
DELETIONS: dict[str, tuple[str, Any, str, str]] = {
    "person": ("/v1/subjects", subject("leaver"), "/v1/subjects/leaver", "subject.erased"),
    "webhook": (
        "/v1/webhooks",
        {"url": "https://8.8.8.8/hook", "events": ["assessment.created"]},
        "/v1/webhooks/{id}",
        "webhook.deleted",
    ),
}


@pytest.mark.parametrize("deletion", list(DELETIONS))
async def test_a_deletion_raced_by_its_twin_happens_once(
    racing: tuple[httpx.AsyncClient, Tenant],  # noqa: F811
    deletion: str,
) -> None:
    """One erasure (or delete) answers 204 and the others the 404 a later one gets; one audit
    event."""
    client, tenant = racing
    h = tenant.headers
    path, body, where, action = DELETIONS[deletion]
    r = await client.post(path, json=body, headers=h)
    assert r.status_code == 201, r.text
    url = where.format(id=r.json().get("id"))
    answers = await asyncio.gather(*(client.delete(url, headers=h) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [204, 404, 404, 404], [a.text for a in answers]
    assert await audit_events(client, tenant, action) == 1


async def test_a_key_revoked_by_two_requests_at_once_keeps_the_first_revocation(
    racing: tuple[httpx.AsyncClient, Tenant],  # noqa: F811
) -> None:
    """Revoking is idempotent (200 each time), and a race records it once, at one moment."""
    client, tenant = racing
    h = tenant.headers
    r = await client.post("/v1/api-keys", json={"name": "leaving", "scopes": ["admin"]}, headers=h)
    assert r.status_code == 201, r.text
    url = f"/v1/api-keys/{r.json()['id']}"
    answers = await asyncio.gather(*(client.delete(url, headers=h) for _ in range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    assert len({a.json()["revoked_at"] for a in answers}) == 1
    assert await audit_events(client, tenant, "api_key.revoked") == 1
    later = await client.delete(url, headers=h)
    assert later.json()["revoked_at"] == answers[0].json()["revoked_at"]


async def test_a_mailbox_registered_by_two_requests_at_once_is_registered_once(
    racing: tuple[httpx.AsyncClient, Tenant],  # noqa: F811
) -> None:
    """Registering a person's mailbox again is a 200; so is registering it twice at once."""
    client, tenant = racing
    h = tenant.headers
    assert (await client.post("/v1/subjects", json=subject("ada"), headers=h)).status_code == 201
    url = "/v1/learning-records/mboxes/ada"
    body = {"mbox": "mailto:ada@example.com"}
    answers = await asyncio.gather(*(client.post(url, json=body, headers=h) for _ in range(4)))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert all(len(a.json()["mbox_sha1sums"]) == 1 for a in answers)
    assert await audit_events(client, tenant, "learning_records.mbox_registered") == 1
