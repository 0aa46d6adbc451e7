"""The API fuzzed on the embedded SQLite file a new user starts with (see ``tests/fuzzing.py``),
with a seed of its own, so the two runs draw different requests."""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuzzing import Fuzzer, settings_for, suite

_DIRECTORY = tempfile.TemporaryDirectory(prefix="ladder-fuzz-")
_URL = f"sqlite+aiosqlite:///{Path(_DIRECTORY.name) / 'ladder.db'}"
FUZZER = Fuzzer(settings_for(_URL), seed=20_261_130)


@pytest.fixture(scope="module", autouse=True)
def fuzz_database() -> Iterator[None]:
    """A fresh SQLite file built by the migrations, with the built-in ladder and a tenant."""
    try:
        FUZZER.prepare(_URL)
        yield
    finally:
        _DIRECTORY.cleanup()


(
    test_every_operation_survives_fuzzing,
    test_undecodable_bodies_get_a_problem_422,
    test_linked_sequences_keep_their_promises,
) = suite(FUZZER)
