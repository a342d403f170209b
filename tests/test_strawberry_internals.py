"""strawberry's non-public API, used only through registry/api/strawberry_internals.py, is still there.

Each import of that module is checked by its own name, without importing the module, so an
upgrade that removes one symbol fails here naming it rather than at start-up with a traceback.
"""

import ast
import importlib
from pathlib import Path

import pytest
import strawberry
from graphql import GraphQLSchema

import registry.api

ADAPTER = Path(registry.api.__file__).parent / "strawberry_internals.py"
PACKAGE = Path(registry.api.__file__).parents[1]


def _strawberry_imports(path: Path) -> list[tuple[str, str]]:
    tree = ast.parse(path.read_text())
    return [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("strawberry.")
        for alias in node.names
    ]


@pytest.mark.parametrize("module, name", _strawberry_imports(ADAPTER), ids=lambda v: str(v))
def test_every_internal_symbol_is_still_there(module, name):
    try:
        found = importlib.import_module(module)
    except ImportError:
        pytest.fail(f"strawberry {strawberry.__version__} has no module {module} (needed for {name}); "
                    f"see registry/api/strawberry_internals.py")
    assert hasattr(found, name), (
        f"strawberry {strawberry.__version__} no longer has {module}.{name}; see registry/api/strawberry_internals.py"
    )


def test_the_attributes_used_are_still_there():
    from strawberry.schema.schema_converter import GraphQLCoreConverter

    assert hasattr(GraphQLCoreConverter, "DEFINITION_BACKREF"), "GraphQLCoreConverter.DEFINITION_BACKREF is gone"

    @strawberry.type
    class Query:
        @strawberry.field
        def hello(self, name: str) -> str:
            return name

    schema = strawberry.Schema(query=Query)
    assert isinstance(getattr(schema, "_schema", None), GraphQLSchema), "strawberry.Schema._schema is gone"
    from registry.api.strawberry_internals import definition_of

    definition = definition_of(schema._schema.query_type.fields["hello"])
    assert definition is not None, "a graphql-core field no longer leads back to its strawberry definition"
    assert hasattr(definition, "directives"), "a strawberry field definition no longer has `directives`"
    assert [a.python_name for a in definition.arguments] == ["name"], "strawberry field `arguments` changed"


def test_no_other_module_uses_strawberry_internals():
    public = {
        "strawberry.dataloader", "strawberry.extensions", "strawberry.scalars", "strawberry.types",
        "strawberry.schema.config", "strawberry.schema_directive",
    }
    for path in PACKAGE.rglob("*.py"):
        if path == ADAPTER:
            continue
        for module, name in _strawberry_imports(path):
            assert module in public, f"{path.relative_to(PACKAGE.parent)} imports {module}.{name}: go through strawberry_internals"
        assert "._schema" not in path.read_text(), f"{path.relative_to(PACKAGE.parent)} uses Schema._schema"
