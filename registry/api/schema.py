"""The GraphQL schema: one for every role (field rules decide what each role gets back)."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter

from registry.api.mutations import Mutation
from registry.api.queries import Query


class RegistrySchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Errors are logged once, without personal data, by api.errors."""


def build_schema() -> RegistrySchema:
    return RegistrySchema(
        query=Query,
        mutation=Mutation,
        extensions=[
            lambda: QueryDepthLimiter(max_depth=12),
            lambda: MaxAliasesLimiter(max_alias_count=30),
            lambda: MaxTokensLimiter(max_token_count=2000),
        ],
    )


schema = build_schema()
