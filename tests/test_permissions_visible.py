"""Permissions are visible to clients before they ask: the published SDL marks every protected field
with `@allowedRoles` generated from the policy, and `me { permissions }` lists what the caller may
read, set, call and declare — exactly what the service then enforces."""

from __future__ import annotations

import pytest
from graphql import (
    FieldDefinitionNode,
    InputObjectTypeDefinitionNode,
    ObjectTypeDefinitionNode,
    parse,
)

from cases import ROLES, build_case, forbidden_fields
from helpers import actor
from registry.access.principal import ROLES as ALL_ROLES

PERMISSIONS = """
query { me { roles permissions {
  queries mutations purposes scopes
  read { type fields }
  write { type fields }
} } }"""


def marks(sdl: str) -> tuple[dict[str, tuple[str, ...] | None], set[str]]:
    """Type.field -> roles of its @allowedRoles mark (None when unmarked), and the input type names."""
    out: dict[str, tuple[str, ...] | None] = {}
    inputs: set[str] = set()
    for definition in parse(sdl).definitions:
        if not isinstance(definition, (ObjectTypeDefinitionNode, InputObjectTypeDefinitionNode)):
            continue
        if isinstance(definition, InputObjectTypeDefinitionNode):
            inputs.add(definition.name.value)
        for field in definition.fields:
            mark = next((d for d in field.directives or () if d.name.value == "allowedRoles"), None)
            roles = None
            if mark is not None:
                (argument,) = mark.arguments
                roles = tuple(v.value for v in argument.value.values)
            out[f"{definition.name.value}.{field.name.value}"] = roles
    return out, inputs


def test_the_sdl_marks_every_protected_field_with_the_roles_of_the_policy(services):
    # Given the SDL the service publishes
    sdl = str(services.schema)
    assert "directive @allowedRoles(roles: [String!]!) on FIELD_DEFINITION | INPUT_FIELD_DEFINITION" in sdl
    policy = services.policy
    found, inputs = marks(sdl)
    # Then each field is marked with exactly the roles the policy allows, unless every role may
    for name, roles in found.items():
        type_name, field = name.split(".")
        allowed = policy.writers(type_name, field) if type_name in inputs else policy.readers(type_name, field)
        if set(allowed) == set(ALL_ROLES):
            assert roles is None, f"{name} is open to every role and should not be marked"
        else:
            assert roles == allowed, name
    # For example
    assert found["Subject.nationalNumber"] == ("referral_officer", "analyst", "senior_analyst")
    assert found["ThreatAssessment.status"] == ("caseworker", "referral_officer", "analyst", "senior_analyst", "dpo")
    assert found["Query.lookupSubject"] == ("partner",)
    assert found["Mutation.validateAssessment"] == ("senior_analyst",)
    assert found["UpdateSubjectInput.nationalNumber"] == ("referral_officer",)
    assert found["PageInfo.hasNextPage"] is None and found["Query.me"] is None


def test_protected_fields_are_nullable_in_the_sdl(services):
    """One schema for every role: a field some reader of its type may not see can resolve to null."""
    sdl = parse(str(services.schema))
    for definition in sdl.definitions:
        if isinstance(definition, ObjectTypeDefinitionNode) and definition.name.value != "Mutation":
            readers = {
                r for f in definition.fields for r in services.policy.readers(definition.name.value, f.name.value)
            }
            for field in definition.fields:
                assert isinstance(field, FieldDefinitionNode)
                hidden = readers - set(services.policy.readers(definition.name.value, field.name.value))
                if hidden:
                    assert field.type.kind != "non_null_type", f"{definition.name.value}.{field.name.value}"


@pytest.mark.parametrize("role", ROLES)
async def test_me_lists_exactly_what_the_policy_grants(world, services, role):
    data = await world.ok(world.token(role), PERMISSIONS, purpose=None)
    permissions = data["me"]["permissions"]
    grants = services.policy.grants([role])
    assert set(permissions["queries"]) == grants.queries
    assert set(permissions["mutations"]) == grants.mutations
    assert set(permissions["purposes"]) == grants.purposes
    assert set(permissions["scopes"]) == grants.scopes
    read = {t["type"]: set(t["fields"]) for t in permissions["read"]}
    assert read == {t: set(f) for t, f in grants.read.items() if f and t not in ("Query", "Mutation")}
    write = {t["type"]: set(t["fields"]) for t in permissions["write"]}
    assert write == {t: set(f) for t, f in grants.write.items() if f}


async def test_what_me_lists_as_readable_is_what_the_service_returns(world):
    # Given a caseworker's own view of their permissions
    case = await build_case(world)
    caseworker = actor(world, "caseworker")
    data = await caseworker.ok(PERMISSIONS)
    readable = {t["type"]: set(t["fields"]) for t in data["me"]["permissions"]["read"]}["Subject"]
    assert "nationalNumber" not in readable and "givenName" in readable

    # When they ask only for what they may read, nothing is refused; one field more is
    leaves = sorted(readable - {"referrals", "notes", "assessments", "latestAssessment", "history"})
    body = await caseworker.gql(f'query {{ subject(id: "{case.subject["id"]}") {{ {" ".join(leaves)} }} }}')
    assert "errors" not in body
    body = await caseworker.gql(f'query {{ subject(id: "{case.subject["id"]}") {{ {" ".join(leaves)} nationalNumber }} }}')
    assert forbidden_fields(body) == ["Subject.nationalNumber"]
