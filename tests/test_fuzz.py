"""The API fuzzed on Postgres (see ``tests/fuzzing.py``): a database of its own, connected as the
harness's non-superuser role so row-level security stays on."""

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import APP_ROLE, _admin_execute, _ensure_app_role, admin_url
from tests.fuzzing import Fuzzer, settings_for, suite

pytestmark = pytest.mark.postgres

_DATABASE = f"{make_url(admin_url()).database or 'ladder_test'}_fuzz_{uuid.uuid4().hex[:10]}"
_OWNER_URL = make_url(admin_url()).set(database=_DATABASE)
FUZZER = Fuzzer(
    settings_for(
        _OWNER_URL.set(username=APP_ROLE, password=None).render_as_string(hide_password=False)
    ),
    seed=20_251_104,
)


@pytest.fixture(scope="module", autouse=True)
def fuzz_database() -> Iterator[None]:
    """A fresh database built by the migrations, with the built-in ladder and a tenant."""
    asyncio.run(_admin_execute([f'CREATE DATABASE "{_DATABASE}"']))
    try:
        owner_url = _OWNER_URL.render_as_string(hide_password=False)
        FUZZER.prepare(owner_url, migrated=lambda: _ensure_app_role(_DATABASE))
        yield
    finally:
        asyncio.run(_admin_execute([f'DROP DATABASE IF EXISTS "{_DATABASE}" WITH (FORCE)']))


(
    test_every_operation_survives_fuzzing,
    test_undecodable_bodies_get_a_problem_422,
    test_linked_sequences_keep_their_promises,
) = suite(FUZZER)
