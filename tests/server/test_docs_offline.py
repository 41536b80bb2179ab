"""The API docs work offline: Swagger UI and ReDoc come from the package, not a CDN."""

from __future__ import annotations

import re

from tests.browser import OFFLINE, dom_after_scripts
from tests.server.conftest import ServerProcess
from watchkeeper.server.docs import ASSETS


def test_root_is_the_dashboard_and_links_the_docs(server: ServerProcess) -> None:
    with server.client(token=None) as client:
        response = client.get("/", follow_redirects=False)
        # With authentication on, the dashboard asks for a token first; its pages link /docs.
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
        login = client.get(response.headers["location"])
    assert login.status_code == 200
    assert 'href="/docs"' in login.text


def test_docs_pages_load_nothing_from_another_host(server: ServerProcess) -> None:
    with server.client(token=None) as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            urls = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert urls, page
            assert all(url.startswith("/static/docs/") for url in urls), (page, urls)
        for name, media_type in ASSETS.items():
            response = client.get(f"/static/docs/{name}")
            assert response.status_code == 200, name
            assert response.headers["content-type"] == media_type
            assert len(response.content) > 1000
        missing = client.get("/static/docs/..%2F__init__.py")
        assert missing.status_code == 404
        unknown = client.get("/static/docs/nope.js")
        assert unknown.status_code == 404
        assert "swagger-ui.css" in unknown.text


def test_swagger_ui_and_redoc_render_offline_in_a_browser(server: ServerProcess) -> None:
    swagger = dom_after_scripts(f"{server.url}/docs", OFFLINE)
    # Swagger UI drew one block per operation of the live OpenAPI document.
    assert swagger.count('class="opblock ') >= 20, swagger[-2000:]
    assert "/v1/models/{model}/events" in swagger
    redoc = dom_after_scripts(f"{server.url}/redoc", OFFLINE)
    assert "/v1/models/{model}/events" in redoc, redoc[-2000:]
