"""The access policy (`auth/policy.toml`): loaded and validated once, the only source of grants.

Deny by default: a role may read, set, call and declare only what the file lists. The
service refuses to start when the file names an unknown role, scope, purpose, type or
field, or when a field of the schema has no rule at all (`check_schema`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from registry.access.grants import MUTATION, QUERY, SUBSCRIPTION, Grants
from registry.access.principal import AGENCY_KINDS, ANY_AGENCY, ROLES, Principal
from registry.access.purpose import PURPOSES
from registry.access.scopes import SCOPES

POLICY_PATH = Path(__file__).resolve().parents[2] / "auth" / "policy.toml"
ROLE_KEYS = {"agencies", "scope", "purposes", "mutations", "queries", "subscriptions", "read", "write"}
ROOTS = (("queries", QUERY), ("mutations", MUTATION), ("subscriptions", SUBSCRIPTION))
SHARED_KEYS = {"read", "write"}


class PolicyError(ValueError):
    """The policy file is inconsistent; the service refuses to start."""


@dataclass(frozen=True)
class SchemaShape:
    """The names the policy is checked against: output fields (name -> nullable) and input fields."""

    outputs: Mapping[str, Mapping[str, bool]]
    inputs: Mapping[str, frozenset[str]]


@dataclass(frozen=True)
class RolePolicy:
    agencies: frozenset[str]  # the agency kinds that may hold the role, or ANY_AGENCY
    scope: str
    purposes: frozenset[str]
    mutations: frozenset[str]
    queries: frozenset[str]
    subscriptions: frozenset[str] = frozenset()
    read: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    write: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)


def _names(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where} must be a list of names")
    return frozenset(value)


def _table(value: Any, where: str) -> dict[str, frozenset[str]]:
    if not isinstance(value, dict):
        raise PolicyError(f"{where} must be a table of Type = [fields]")
    return {type_name: _names(fields, f"{where}.{type_name}") for type_name, fields in value.items()}


def _merge(tables: Iterable[Mapping[str, frozenset[str]]]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for table in tables:
        for type_name, fields in table.items():
            out.setdefault(type_name, set()).update(fields)
    return {type_name: frozenset(fields) for type_name, fields in out.items()}


class Policy:
    def __init__(
        self,
        roles: dict[str, RolePolicy],
        shared_read: Mapping[str, frozenset[str]] | None = None,
        shared_write: Mapping[str, frozenset[str]] | None = None,
        source: str = "policy.toml",
    ) -> None:
        self.roles = roles
        self.shared_read = dict(shared_read or {})
        self.shared_write = dict(shared_write or {})
        self.source = source
        self._grants: dict[frozenset[str], Grants] = {}
        self._bound: dict[Principal, Principal] = {}

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: Path | str = POLICY_PATH) -> "Policy":
        path = Path(path)
        src = path.name
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PolicyError(f"{src}: cannot be read: {exc}") from None
        unknown = set(raw) - {"roles", "shared"}
        if unknown:
            raise PolicyError(f"{src}: unknown section(s) {sorted(unknown)}")
        shared = raw.get("shared", {})
        if set(shared) - SHARED_KEYS:
            raise PolicyError(f"{src}: [shared] has unknown key(s) {sorted(set(shared) - SHARED_KEYS)}")
        roles = {name: cls._role(src, name, spec) for name, spec in raw.get("roles", {}).items()}
        policy = cls(
            roles,
            _table(shared.get("read", {}), f"{src}: shared.read"),
            _table(shared.get("write", {}), f"{src}: shared.write"),
            src,
        )
        for where, table in policy._read_tables():
            for key, root in ROOTS:
                if root in table:
                    raise PolicyError(f"{src}: {where}.{root}: grant root fields with `{key}` per role")
        return policy

    @staticmethod
    def _role(src: str, name: str, spec: Any) -> RolePolicy:
        if name not in ROLES:
            raise PolicyError(f"{src}: unknown role {name!r} (known: {', '.join(ROLES)})")
        if not isinstance(spec, dict):
            raise PolicyError(f"{src}: roles.{name} must be a table")
        if set(spec) - ROLE_KEYS:
            raise PolicyError(f"{src}: roles.{name} has unknown key(s) {sorted(set(spec) - ROLE_KEYS)}")
        scope = spec.get("scope")
        if scope not in SCOPES:
            raise PolicyError(f"{src}: role {name!r} has unknown scope {scope!r} (known: {', '.join(SCOPES)})")
        if "agencies" not in spec:
            raise PolicyError(f"{src}: roles.{name} must say which agencies may hold it (agencies = [kinds])")
        agencies = _names(spec["agencies"], f"{src}: roles.{name}.agencies")
        known = {*AGENCY_KINDS, ANY_AGENCY}
        if not agencies or agencies - known:
            raise PolicyError(
                f"{src}: roles.{name}.agencies names unknown agency kind(s) {sorted(agencies - known)}"
                f" (known: {', '.join(AGENCY_KINDS)}, or \"{ANY_AGENCY}\" for any agency)"
                if agencies else f"{src}: roles.{name}.agencies is empty: no agency could hold the role"
            )
        purposes = _names(spec.get("purposes", []), f"{src}: roles.{name}.purposes")
        if purposes - set(PURPOSES):
            raise PolicyError(f"{src}: role {name!r} names unknown purpose(s) {sorted(purposes - set(PURPOSES))}")
        return RolePolicy(
            agencies=agencies,
            scope=scope,
            purposes=purposes,
            mutations=_names(spec.get("mutations", []), f"{src}: roles.{name}.mutations"),
            queries=_names(spec.get("queries", []), f"{src}: roles.{name}.queries"),
            subscriptions=_names(spec.get("subscriptions", []), f"{src}: roles.{name}.subscriptions"),
            read=_table(spec.get("read", {}), f"{src}: roles.{name}.read"),
            write=_table(spec.get("write", {}), f"{src}: roles.{name}.write"),
        )

    def _read_tables(self) -> list[tuple[str, Mapping[str, frozenset[str]]]]:
        return [("shared.read", self.shared_read)] + [(f"roles.{n}.read", r.read) for n, r in self.roles.items()]

    def _write_tables(self) -> list[tuple[str, Mapping[str, frozenset[str]]]]:
        return [("shared.write", self.shared_write)] + [(f"roles.{n}.write", r.write) for n, r in self.roles.items()]

    # ------------------------------------------------------------------ decisions

    def grants(self, roles: Iterable[str]) -> Grants:
        """The decision table for this set of roles (computed once per distinct set)."""
        key = frozenset(r for r in roles if r in self.roles)
        found = self._grants.get(key)
        if found is None:
            mine = [self.roles[r] for r in sorted(key)]
            read = _merge([self.shared_read, *(r.read for r in mine)])
            read[QUERY] = frozenset().union(*(r.queries for r in mine))
            read[MUTATION] = frozenset().union(*(r.mutations for r in mine))
            read[SUBSCRIPTION] = frozenset().union(*(r.subscriptions for r in mine))
            found = self._grants[key] = Grants(
                roles=key,
                read=read,
                write=_merge([self.shared_write, *(r.write for r in mine)]),
                purposes=frozenset().union(*(r.purposes for r in mine)),
                scopes=frozenset(r.scope for r in mine),
            )
        return found

    def grants_for(self, principal: Principal) -> Grants:
        return self.grants(principal.roles)

    def bind(self, principal: Principal) -> Principal:
        """The principal with the row scopes the policy grants its roles; remembered per caller,
        as every request binds its caller again."""
        if principal.break_glass_subject is not None:
            return dataclasses.replace(principal, scopes=self.grants_for(principal).scopes)
        bound = self._bound.get(principal)
        if bound is None:
            if len(self._bound) >= 10_000:
                self._bound.clear()
            bound = self._bound[principal] = dataclasses.replace(principal, scopes=self.grants_for(principal).scopes)
        return bound

    def misheld_role(self, principal: Principal, agency_kind: str | None) -> str | None:
        """The first of the principal's roles its agency (of `agency_kind`; None: not registered)
        may not hold, or None when it may hold them all."""
        for name in sorted(principal.roles):
            role = self.roles.get(name)
            if role is not None and ANY_AGENCY not in role.agencies and agency_kind not in role.agencies:
                return name
        return None

    def readers(self, type_name: str, field: str) -> tuple[str, ...]:
        """The roles that may read Type.field (all roles for a shared field), in ROLES order."""
        return tuple(r for r in ROLES if self.grants([r]).may_read(type_name, field))

    def writers(self, input_type: str, field: str) -> tuple[str, ...]:
        return tuple(r for r in ROLES if self.grants([r]).may_write(input_type, field))

    # ------------------------------------------------------------------ validation

    def check_schema(self, shape: SchemaShape) -> None:
        """Refuse a policy that names what the schema lacks, or leaves a schema field without a rule."""
        src = self.source
        for where, table in self._read_tables():
            self._known(where, table, {t: set(f) for t, f in shape.outputs.items()}, "type")
        for where, table in self._write_tables():
            self._known(where, table, {t: set(f) for t, f in shape.inputs.items()}, "input type")
        for name, role in self.roles.items():
            for key, root in ROOTS:
                unknown = getattr(role, key) - set(shape.outputs.get(root, {}))
                if unknown:
                    raise PolicyError(f"{src}: roles.{name}.{key} names unknown {root} field(s) {sorted(unknown)}")
        everyone = self.grants(ROLES)
        for type_name, fields in sorted(shape.outputs.items()):
            for field in fields:
                if not everyone.may_read(type_name, field):
                    raise PolicyError(f"{src}: no rule for {type_name}.{field}: grant it to a role (deny by default)")
        for type_name, input_fields in sorted(shape.inputs.items()):
            for field in sorted(input_fields):
                if not everyone.may_write(type_name, field):
                    raise PolicyError(f"{src}: no rule for input {type_name}.{field}: grant it to a role")
        self._check_nullable(shape)

    def _known(self, where: str, table: Mapping[str, frozenset[str]], schema: dict[str, set[str]], kind: str) -> None:
        for type_name, fields in table.items():
            if type_name not in schema:
                raise PolicyError(f"{self.source}: {where} names unknown {kind} {type_name!r}")
            unknown = fields - schema[type_name]
            if unknown:
                raise PolicyError(f"{self.source}: {where}.{type_name} names unknown field(s) {sorted(unknown)}")

    def _check_nullable(self, shape: SchemaShape) -> None:
        """A field some role reaching its type may not read must be nullable: it resolves to null.

        Mutations are exempt: a refused mutation stops its operation (data null, later
        mutations not run), as any failed mutation does; it never half-succeeds.
        """
        for type_name, fields in sorted(shape.outputs.items()):
            if type_name == MUTATION:
                continue
            reaching = {r for r in ROLES if any(self.grants([r]).may_read(type_name, f) for f in fields)}
            for field, nullable in fields.items():
                denied = reaching - set(self.readers(type_name, field))
                if denied and not nullable:
                    raise PolicyError(
                        f"{self.source}: {type_name}.{field} is non-null but hidden from {sorted(denied)}, "
                        "who read other fields of the type: make the field nullable in the schema"
                    )
