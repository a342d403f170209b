"""Shared Information Registry: a GraphQL registry of minors' case records shared between agencies."""
