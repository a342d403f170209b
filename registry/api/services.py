"""What a request uses of the services built once per process (app.Services provides them).

A Protocol, because the app layer sits above the api: the endpoint names what it relies on
without importing the app, and mypy checks that app.Services keeps providing it.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.access.agency_binding import AgencyBinding
from registry.access.identity import TokenVerifier
from registry.access.policy import Policy
from registry.api.admission import Admission
from registry.api.compiler import Compiler
from registry.api.documents import TrustedDocuments
from registry.api.limits import QueryLimits
from registry.api.schema import RegistrySchema
from registry.config import Settings
from registry.domain.budget import RateLimiter
from registry.db.engine import ReadPool
from registry.db.health import DatabaseHealth


class RequestServices(Protocol):
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]  # ORM sessions, for the resolvers
    reads: ReadPool  # plain driver connections, for compiled reads
    policy: Policy
    schema: RegistrySchema
    verifier: TokenVerifier
    binding: AgencyBinding
    lookups: RateLimiter
    limits: QueryLimits
    documents: TrustedDocuments
    compiler: Compiler
    health: DatabaseHealth
    admission: Admission
