"""A query that runs past `statement_timeout` is cancelled by PostgreSQL and answered with a clear error."""

from sqlalchemy import text

from registry.app import create_app
from registry.config import Settings


async def test_a_statement_past_the_timeout_is_cancelled_with_a_clear_error(database_url, tmp_path):
    # given a service whose statements may run 50 ms at most
    app = create_app(Settings(database_url=database_url, data_dir=tmp_path, statement_timeout_ms=50))
    async with app.router.lifespan_context(app):
        engine = app.state.services.engine
        # when a statement runs longer than that
        from graphql import GraphQLError

        from registry.api.errors import format_error

        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT pg_sleep(1)"))
        except Exception as exc:  # noqa: BLE001 - the error under test
            body, unexpected = format_error(GraphQLError(str(exc), original_error=exc), "req-1")
        else:
            raise AssertionError("pg_sleep(1) was not cancelled at a 50 ms statement_timeout")
    # then the caller learns why, with a stable code, and nothing of the transaction is kept
    assert body["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert body["extensions"]["limit"] == "statement_timeout"
    assert "statement timeout" in body["message"]
    assert unexpected is True
