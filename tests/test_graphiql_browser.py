"""GraphiQL works in a real browser with no internet: Debian's chromium, driven by playwright,
every request to a host other than this machine refused. The page renders from the service's
own assets; the user sets headers, runs a query, sees data and a FORBIDDEN error; the docs
explorer shows the schema, fetched with the user's headers. A screenshot is kept in .ci-work/."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from served import Served, registry_env, token

CHROMIUM = shutil.which("chromium")
if not CHROMIUM and not os.environ.get("CI"):
    pytest.skip("no chromium here (apt-get install chromium); CI always runs this test", allow_module_level=True)

from playwright.sync_api import Page, sync_playwright  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / ".ci-work"
LOCAL = {"127.0.0.1", "localhost", "::1"}
TIMEOUT_MS = 30_000


def set_editor(page: Page, selector: str, text: str) -> None:
    """As a user does: click into the editor, select everything, type the new text."""
    page.locator(f"{selector} .CodeMirror").first.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def response_text(page: Page) -> str:
    return page.locator(".graphiql-response .CodeMirror").first.evaluate("el => el.CodeMirror.getValue()")


def run_query(page: Page, query: str) -> dict:
    set_editor(page, ".graphiql-query-editor", query)
    page.wait_for_timeout(500)  # GraphiQL reads the operation's name from the text after a pause, as a user makes
    before = response_text(page)
    page.locator(".graphiql-execute-button").click()
    page.wait_for_function(
        "before => { const t = document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue();"
        " return t && t !== before && t.trim().startsWith('{'); }",
        arg=before,
        timeout=TIMEOUT_MS,
    )
    return json.loads(response_text(page))


def test_graphiql_in_a_browser_without_internet(settings, demo_agencies, tmp_path):
    assert CHROMIUM, "chromium is required in CI (.ci/run installs it)"
    env = registry_env(database_url=settings.database_url, data_dir=str(tmp_path / "data"))
    served = Served(tmp_path, "serve", env).wait_ready()
    external: list[str] = []
    try:
        caseworker = token(
            env, "--role", "caseworker", "--agency", "YOUTH", "--unit", "IPPJ-BRAINE",
            "--subject", f"browser-{uuid.uuid4()}", "--port", str(served.port),
        )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1500, "height": 950})
                page.set_default_timeout(TIMEOUT_MS)

                def only_this_machine(route) -> None:
                    if urlparse(route.request.url).hostname in LOCAL or route.request.url.startswith("data:"):
                        route.continue_()
                    else:
                        external.append(route.request.url)
                        route.abort("internetdisconnected")

                page.route("**/*", only_this_machine)

                # Given the page, rendered from the service's own assets
                page.goto(f"{served.base}/graphql", wait_until="networkidle")
                page.wait_for_selector(".graphiql-container")
                headers_editor = ".graphiql-editor-tool .graphiql-editor:not(.hidden)"
                placeholder = page.locator(f"{headers_editor} .CodeMirror").first.evaluate("el => el.CodeMirror.getValue()")
                assert "Authorization" in placeholder and "Registry-Purpose" in placeholder

                # When the user sets the headers and runs a query
                set_editor(page, headers_editor, json.dumps(
                    {"Authorization": f"Bearer {caseworker}", "Registry-Purpose": "CASE_SUPERVISION"}
                ))
                data = run_query(page, "query Me { me { roles purposes } }")
                assert data == {"data": {"me": {"roles": ["caseworker"], "purposes": ["CASE_SUPERVISION", "REFERRAL"]}}}

                # Then a field beyond the role is refused, visibly
                refused = run_query(page, "query Audit { auditEvents(first: 1) { edges { cursor } } }")
                assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", refused

                # And the docs explorer shows the schema (fetched with the headers the user set)
                page.locator('[aria-label="Show Documentation Explorer"]').click()
                explorer = page.locator(".graphiql-doc-explorer")
                explorer.get_by_text("Query", exact=True).first.click()
                explorer.get_by_text("subjects", exact=True).first.wait_for()

                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "graphiql.png"))
            finally:
                browser.close()
    finally:
        assert served.stop() == 0, served.logs()
    assert external == [], f"the page asked for other hosts: {external}"
