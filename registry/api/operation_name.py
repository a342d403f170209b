"""The name of the operation a request executes, for its audit events and its log line.

A client that sends no `operationName` (curl, a script) still runs a named operation when its
document holds one: the name recorded is the one executed, taken from the document. An
anonymous operation has none (None).
"""

from __future__ import annotations

from functools import lru_cache

from graphql import GraphQLError, OperationDefinitionNode, parse

MAX_TOKENS = 20_000  # a larger document is refused by the limits before it runs
CACHED_CHARS = 16_384  # longer texts are not kept: the cache stays small whatever clients send


def executed_operation(query: str, requested: str | None) -> str | None:
    """`requested` when the client named one; else the name of the document's only operation."""
    if requested is not None:
        return requested
    return _cached(query) if len(query) <= CACHED_CHARS else _only_operation(query)


@lru_cache(maxsize=512)
def _cached(query: str) -> str | None:
    """Parsed once per document text: clients send the same few documents again and again."""
    return _only_operation(query)


def _only_operation(query: str) -> str | None:
    try:
        document = parse(query, no_location=True, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].name is None:
        return None  # several (the request fails without a name) or anonymous
    return operations[0].name.value
