"""Trusted documents: with them on (the production default), only graphql/operations/ runs.

Each file `graphql/operations/*.graphql` is one document (one operation and the fragments it
uses). Its id is `sha256:` and the hex SHA-256 of the file's UTF-8 text, as in the
GraphQL-over-HTTP persisted documents convention. A request names its document by
`documentId`, by Apollo's `extensions.persistedQuery.sha256Hash`, or sends the text itself:
the same text, or the same document printed differently (whitespace, commas, comments and
the order of its definitions do not matter, so generated clients that re-print a document
still match). Anything else is refused here, before it is parsed for execution: an unknown
id with PERSISTED_QUERY_NOT_FOUND, other text with FORBIDDEN. With trusted documents off
(development), any text runs, and known ids still work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, parse, print_ast

from registry.api.errors import error

log = logging.getLogger("registry.documents")

OPERATIONS_DIR = Path(__file__).resolve().parents[2] / "graphql" / "operations"
_HEX = re.compile(r"^[0-9a-f]{64}$")
MAX_CANONICAL_TOKENS = 5000  # a trusted document is far smaller; larger text is simply not one
PRINTINGS = 256  # other printings of trusted documents remembered (a generated client sends one each)


def document_id(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def canonical(text: str) -> str | None:
    """The document's definitions, printed and sorted; None when `text` is no GraphQL document."""
    try:
        document = parse(text, no_location=True, max_tokens=MAX_CANONICAL_TOKENS)
    except GraphQLError:
        return None
    return "\n".join(sorted(print_ast(d) for d in document.definitions))


@dataclass(frozen=True)
class TrustedDocument:
    id: str
    name: str  # the operation's name
    path: str  # file name under graphql/operations/
    text: str


class Refused(Exception):
    """A request the trusted-document check turns away; `body` is the response's error."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body["message"])
        self.body = body


class TrustedDocuments:
    """The documents of graphql/operations/, by id and by text; `enforce`: nothing else runs."""

    def __init__(self, documents: list[TrustedDocument], *, enforce: bool) -> None:
        self.enforce = enforce
        self.by_id = {d.id: d for d in documents}
        self.by_text = {d.text: d for d in documents}
        self.by_canonical = {canonical(d.text): d for d in documents}
        self._printings: OrderedDict[str, TrustedDocument] = OrderedDict()

    @classmethod
    def load(cls, directory: Path | None = None, *, enforce: bool) -> "TrustedDocuments":
        """The documents of `directory`; ValueError when enforced with none to run (nothing would)."""
        directory = directory or OPERATIONS_DIR
        documents = read_operations(directory)
        if enforce and not documents:
            raise ValueError(f"trusted documents are on, but {directory} holds no *.graphql document")
        return cls(documents, enforce=enforce)

    def manifest(self) -> dict[str, str]:
        """documentId -> text, the persisted-documents manifest client teams may ship."""
        return {d.id: d.text for d in sorted(self.by_id.values(), key=lambda d: d.path)}

    def query(self, request: dict[str, Any]) -> str:
        """The text to execute for one GraphQL request object, or Refused."""
        text = request.get("query")
        if text is not None and not isinstance(text, str):
            raise Refused(error("query must be a string", "BAD_USER_INPUT"))
        wanted, apq = _requested_id(request)
        if wanted is not None:
            found = self.by_id.get(wanted)
            if found is not None:
                if text and text != found.text and canonical(text) != canonical(found.text):
                    raise Refused(error("the query does not match its documentId", "BAD_USER_INPUT"))
                return found.text
            # Apollo's automatic persisted queries send the hash of the client's own text, then
            # the text with it: that text is then checked like any other.
            if not (apq and text):
                raise Refused(error("PersistedQueryNotFound: no trusted document has this id", "PERSISTED_QUERY_NOT_FOUND"))
            if document_id(text) != wanted:
                raise Refused(error("provided sha256Hash does not match the query", "BAD_USER_INPUT"))
        if not text:
            raise Refused(error("the request has no query", "BAD_USER_INPUT"))
        if not self.enforce:
            return text
        found = self.by_text.get(text) or self._printing(text)
        if found is None:
            log.warning("refused a document that is not trusted (%d characters)", len(text))
            raise Refused(
                error(
                    "only the registry's trusted documents run here (graphql/operations); send one by documentId",
                    "FORBIDDEN",
                )
            )
        return found.text

    def _printing(self, text: str) -> TrustedDocument | None:
        """The trusted document `text` prints, remembering the printings that matched."""
        found = self._printings.get(text)
        if found is None:
            found = self.by_canonical.get(canonical(text))
            if found is not None:
                self._printings[text] = found
                if len(self._printings) > PRINTINGS:
                    self._printings.popitem(last=False)
        return found


def _requested_id(request: dict[str, Any]) -> tuple[str | None, bool]:
    """The id asked for ("sha256:<hex>"), and whether it came as Apollo's persistedQuery hash."""
    document, apq = request.get("documentId"), False
    if document is None:
        extensions = request.get("extensions")
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        document = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        apq = document is not None
    if document is None:
        return None, False
    if not isinstance(document, str):
        return "", apq  # matches nothing
    document = document.strip().lower()
    return (document if document.startswith("sha256:") or not _HEX.match(document) else "sha256:" + document), apq


def read_operations(directory: Path) -> list[TrustedDocument]:
    """Every `*.graphql` file in `directory`: one operation each (ValueError otherwise)."""
    documents = []
    for path in sorted(directory.glob("*.graphql")):
        text = path.read_text(encoding="utf-8")
        operations = [d for d in parse(text).definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) != 1 or operations[0].name is None:
            raise ValueError(f"{path.name}: a trusted document holds exactly one named operation")
        documents.append(TrustedDocument(id=document_id(text), name=operations[0].name.value, path=path.name, text=text))
    return documents


def manifest_json(documents: TrustedDocuments) -> str:
    return json.dumps(documents.manifest(), indent=2) + "\n"
