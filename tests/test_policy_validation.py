"""The policy file is checked once at start-up: the service refuses to start, naming the culprit,
when the policy names an unknown role, scope, purpose, type or field, or when a schema field has
no rule (deny by default is not enough: every field must have been decided)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from registry.access.policy import POLICY_PATH, Policy, PolicyError
from registry.api.schema import shape_of
from registry.app import create_app
from registry.cli import cmd_serve

REAL = POLICY_PATH.read_text()


def variant(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """The real policy with each (old, new) text replaced once; fails if `old` is not there."""
    text = REAL
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def refusal(services, path: Path) -> str:
    with pytest.raises(PolicyError) as refused:
        Policy.load(path).check_schema(shape_of(services.schema))
    return str(refused.value)


def test_the_real_policy_covers_the_schema(services):
    Policy.load().check_schema(shape_of(services.schema))


@pytest.mark.parametrize(
    "edit, culprit",
    [
        (("[roles.admin]", "[roles.superuser]\nscope = \"all\"\n\n[roles.admin]"), "unknown role 'superuser'"),
        (('scope = "own_institution"', 'scope = "own_city"'), "role 'caseworker' has unknown scope 'own_city'"),
        (('purposes = ["LOOKUP"]', 'purposes = ["LOOKUP", "CURIOSITY"]'), "role 'partner' names unknown purpose"),
        (("[roles.dpo.read]\n", "[roles.dpo.read]\nSujet = [\"id\"]\n"), "roles.dpo.read names unknown type 'Sujet'"),
        (
            ("[roles.dpo.read]\nSubject = [\n", "[roles.dpo.read]\nSubject = [\n  \"nationalNumbr\",\n"),
            "roles.dpo.read.Subject names unknown field(s) ['nationalNumbr']",
        ),
        (
            ("[roles.dpo.write]\n", "[roles.dpo.write]\nAuditFilter = [\"actor\"]\n"),
            "roles.dpo.write names unknown input type 'AuditFilter'",
        ),
        (
            ('SubjectFilter = ["reference", "agency"]', 'SubjectFilter = ["reference", "agency", "colour"]'),
            "roles.dpo.write.SubjectFilter names unknown field(s) ['colour']",
        ),
        (
            ('queries = ["me", "lookupSubject"]', 'queries = ["me", "lookupSubject", "everything"]'),
            "roles.partner.queries names unknown Query field(s) ['everything']",
        ),
        (
            ('mutations = ["reviewBreakGlass"]\n\n[roles.dpo.read]', 'mutations = ["eraseSubject"]\n\n[roles.dpo.read]'),
            "roles.dpo.mutations names unknown Mutation field(s) ['eraseSubject']",
        ),
        (("[roles.dpo.read]\n", "[roles.dpo.read]\nQuery = [\"subjects\"]\n"), "grant root fields with `queries`"),
        (("mutations = [\"reviewBreakGlass\"]\n\n[roles.dpo.read]", "mutatons = []\n\n[roles.dpo.read]"), "unknown key(s) ['mutatons']"),
        (("\n[shared.read]\n", "\n[shared.reed]\n"), "[shared] has unknown key(s) ['reed']"),
        (('[roles.analyst]\nagencies = ["threat_analysis"]\n', "[roles.analyst]\n"), "roles.analyst must say which agencies"),
        (
            ('[roles.partner]\nagencies = ["partner"]', '[roles.partner]\nagencies = ["partner", "police"]'),
            "roles.partner.agencies names unknown agency kind(s) ['police']",
        ),
        (('[roles.dpo]\nagencies = ["*"]', "[roles.dpo]\nagencies = []"), "roles.dpo.agencies is empty"),
    ],
)
def test_a_policy_naming_what_does_not_exist_is_refused(services, tmp_path, edit, culprit):
    assert culprit in refusal(services, variant(tmp_path, edit))


def test_a_schema_field_without_any_rule_is_refused(services, tmp_path):
    # Given a policy where no role may read Subject.retainUntil any more
    edits = [(line, line.replace('"retainUntil", ', "")) for line in REAL.splitlines() if '"retainUntil", ' in line]
    assert len(edits) == 5
    # Then the service refuses: the field has no rule at all
    assert "no rule for Subject.retainUntil" in refusal(services, variant(tmp_path, *edits))


def test_an_input_field_without_any_rule_is_refused(services, tmp_path):
    edits = [
        (line, line.replace(', "referralId"]', "]"))
        for line in REAL.splitlines()
        if line.startswith("AddNoteInput = [")
    ]
    assert len(edits) == 4
    assert "no rule for input AddNoteInput.referralId" in refusal(services, variant(tmp_path, *edits))


def test_a_query_no_role_may_call_is_refused(services, tmp_path):
    edits = [(line, line.replace(', "lookupSubject"', "")) for line in REAL.splitlines() if '"lookupSubject"]' in line]
    assert "no rule for Query.lookupSubject" in refusal(services, variant(tmp_path, *edits))


def test_a_non_null_field_hidden_from_a_reader_of_its_type_is_refused(services, tmp_path):
    # Given a policy that hides Subject.id (non-null in the schema) from the dpo, who reads other Subject fields
    path = variant(tmp_path, ('[roles.dpo.read]\nSubject = [\n  "id", ', '[roles.dpo.read]\nSubject = [\n  '))
    assert "Subject.id is non-null but hidden from ['dpo']" in refusal(services, path)


def test_an_unreadable_policy_file_is_refused(tmp_path):
    (tmp_path / "policy.toml").write_text("[roles.caseworker\nscope = ")
    with pytest.raises(PolicyError, match="policy.toml: cannot be read"):
        Policy.load(tmp_path / "policy.toml")


# --------------------------------------------------------------------------- the service refuses to start


async def test_the_app_refuses_to_start_with_a_bad_policy(settings, tmp_path):
    path = variant(tmp_path, ('scope = "own_institution"', 'scope = "own_city"'))
    app = create_app(settings.model_copy(update={"policy_path": path}))
    with pytest.raises(PolicyError, match="unknown scope 'own_city'"):
        async with app.router.lifespan_context(app):
            pass


def test_registry_serve_refuses_to_start_naming_the_culprit(settings, tmp_path, capsys):
    path = variant(tmp_path, ("[roles.dpo.read]\n", "[roles.dpo.read]\nSujet = [\"id\"]\n"))
    args = argparse.Namespace(host="127.0.0.1", port=0, demo=False, workers=1)
    assert cmd_serve(args, settings.model_copy(update={"policy_path": path})) == 2
    assert "refusing to start" in capsys.readouterr().err


def test_every_scope_the_policy_names_is_a_row_scope_predicate():
    from registry.access.scopes import SCOPES

    assert {role.scope for role in Policy.load().roles.values()} <= set(SCOPES)
