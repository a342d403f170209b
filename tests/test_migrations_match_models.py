"""The Alembic migrations build exactly the schema the ORM models describe."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from registry.db.migrate import migrations_current
from registry.db.tables import Base


async def test_migrated_database_matches_the_models(services):
    # given the test database, migrated to head by the app's start-up
    async with services.engine.connect() as conn:
        # when alembic compares it with the ORM metadata
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata)
        )
        current = await conn.run_sync(migrations_current)
    # then there is nothing a new migration would have to add, change or drop
    assert diff == []
    assert current


async def test_readiness_reports_current_migrations(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
