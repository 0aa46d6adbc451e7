"""Which database errors are the 503 a retry may cure, and which are bugs (500)."""

import asyncpg

from app.errors import is_transient_database_error


def test_a_raw_driver_call_on_a_closed_connection_is_transient() -> None:
    # What asyncpg raises when the connection died between BEGIN and the score statement.
    closed = asyncpg.InterfaceError("cannot perform operation: connection is closed")
    assert is_transient_database_error(closed)


def test_a_raw_driver_mistake_of_ours_is_not_transient() -> None:
    mistake = asyncpg.InterfaceError("the server expects 2 arguments for this query, 1 was passed")
    assert not is_transient_database_error(mistake)
