"""The database as one tenant's administrator, for command-line work (no server, no API key).

`ladder export`, `import`, `diff`, `impact` and `calibration ...` read and write a tenant's data
directly. Each opens an engine from the settings the command was started with, finds the tenant
by its slug (exit status 1 with a message if there is none), binds the tenant to the transaction
so row-level security applies as in a request, and runs the service code as an admin principal.
"""

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import repository as auth_repo
from app.auth.principal import Principal
from app.config import Settings
from app.db import bind_tenant, create_engine, make_sessionmaker, unit_of_work


@asynccontextmanager
async def tenant_admin(
    settings: Settings, tenant_slug: str, command: str, *, write: bool = False
) -> AsyncIterator[tuple[AsyncSession, Principal]]:
    """One transaction as the tenant's admin: committed at the end when ``write``, else not."""
    engine = create_engine(settings)
    try:
        maker = make_sessionmaker(engine)
        async with unit_of_work(maker) if write else maker() as session:
            tenant = await auth_repo.get_tenant_by_slug(session, tenant_slug)
            if tenant is None:
                sys.exit(f"ladder {command}: no tenant {tenant_slug!r}")
            await bind_tenant(session, tenant.id)
            yield session, Principal(tenant_id=tenant.id, key_id=None, scopes=frozenset({"admin"}))
    finally:
        await engine.dispose()
