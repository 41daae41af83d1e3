"""A door for remote use: Gradio's login from an auth file, refused uploads, one-line logs for rejected requests.

The app is served for real on loopback with a login; gradio_client, httpx and Chromium knock on it
(integration). The auth file's format and the refusal to serve another host without a login need no
server (unit).
"""

from __future__ import annotations

import re

import httpx
import pytest
from typer.testing import CliRunner

from assistant import ui
from assistant.cli import app as cli_app
from tests.conftest import WAIT_MS
from tests.helpers import free_port

USER, PASSWORD = "alice", "correct horse battery staple"
# What a visitor without a login may get: the page that shows the login form and its static pieces.
LOGIN_PAGE = ui.LOGIN_PAGE_PATHS
ESSAY_WORDS = ["small yard", "Sullivan", "Huawei", "Nishimura"]


@pytest.fixture(scope="module")
def auth_server(assistant, tmp_path_factory):
    path = tmp_path_factory.mktemp("auth") / "users.txt"
    path.write_text(f"# users of the chat\n{USER}:{PASSWORD}\nbob:another:colon\n", encoding="utf-8")
    port = free_port()
    app = ui.launch(assistant, port=port, block=False, auth=ui.load_auth_file(path))
    yield f"http://127.0.0.1:{port}/", app
    app.close()


@pytest.mark.unit
def test_auth_file_format(tmp_path):
    path = tmp_path / "users.txt"
    path.write_text("# comment\n\n alice : pw one \nbob:x:y\n", encoding="utf-8")
    assert ui.load_auth_file(path) == [("alice", " pw one"), ("bob", "x:y")]
    for text, message in [
        ("alice\n", "line 1: expected username:password"),
        ("alice:\n", "line 1: expected username:password"),
        (":pw\n", "line 1: expected username:password"),
        ("a:1\na:2\n", "line 2: username 'a' appears twice"),
        ("# nobody\n", "holds no username:password line"),
    ]:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=re.escape(message)):
            ui.load_auth_file(path)
    with pytest.raises(ValueError, match="cannot read the auth file"):
        ui.load_auth_file(tmp_path / "missing.txt")


def _routes(app) -> list[tuple[str, str]]:
    found = []

    def walk(routes):
        for r in routes:
            if hasattr(r, "path"):
                for method in sorted(getattr(r, "methods", None) or {"GET"}):
                    if method not in ("HEAD", "OPTIONS"):
                        found.append((method, re.sub(r"\{[^}]+\}", "x", r.path.replace("{api_name}", "answer"))))
            elif hasattr(r, "original_router"):
                walk(r.original_router.routes)

    walk(app.server_app.routes)
    return found


@pytest.mark.integration
def test_no_route_is_served_without_a_login(auth_server):
    url, app = auth_server
    routes = _routes(app) + [("GET", "/gradio_api/file=/etc/passwd"), ("GET", "/docs"), ("GET", "/openapi.json")]
    assert ("POST", "/gradio_api/call/answer") in routes and ("POST", "/gradio_api/queue/join") in routes
    served = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for method, path in routes:
            # Streamed: an event stream (heartbeat, queue data) would never end; its status and first bytes tell.
            with http.stream(method, path, json={"data": ["Who wrote the essay?", []]}) as response:
                status = response.status_code
                body = next(response.iter_text(), "")
            if status < 300 and path.rstrip("/") not in {p.rstrip("/") for p in LOGIN_PAGE}:
                served.append((method, path, status, body[:80]))
            assert not any(w in body for w in ESSAY_WORDS), (method, path)
    print(f"\n{len(routes)} routes asked without a login; served: {served}")
    assert served == []


@pytest.mark.integration
def test_api_wrong_password_refused_right_one_admitted(auth_server, assistant):
    from gradio_client import Client

    url, _ = auth_server
    with pytest.raises(Exception, match="(?i)credentials|login|auth|401"):
        Client(url, auth=(USER, "wrong"), verbose=False)
    with pytest.raises(Exception, match="(?i)credentials|login|auth|401"):
        Client(url, verbose=False)
    client = Client(url, auth=(USER, PASSWORD), verbose=False)
    got = client.predict("Who wrote the essay?", [], api_name="/answer")
    assert got["answer"] == assistant.answer("Who wrote the essay?").answer
    assert Client(url, auth=("bob", "another:colon"), verbose=False).predict("Who wrote the essay?", api_name="/chat")


@pytest.mark.integration
def test_uploads_refused_with_or_without_a_login(auth_server):
    url, _ = auth_server
    with httpx.Client(base_url=url, timeout=30) as http:
        files = {"files": ("note.txt", b"x" * 10, "text/plain")}
        assert http.post("/gradio_api/upload", files=files).status_code == 403
        login = http.post("/login", data={"username": USER, "password": PASSWORD})
        assert login.status_code == 200, login.text
        assert http.get("/config").status_code == 200  # logged in
        response = http.post("/gradio_api/upload", files={"files": ("big.txt", b"x" * 100_000, "text/plain")})
        assert response.status_code == 403 and "uploads are disabled" in response.text


@pytest.mark.integration
def test_rejected_requests_logged_in_one_line(auth_server, capfd, caplog):
    from gradio_client import Client

    url, _ = auth_server
    client = Client(url, auth=(USER, PASSWORD), verbose=False)
    capfd.readouterr()
    with caplog.at_level("WARNING", logger="assistant"):
        with pytest.raises(Exception, match="the question is empty"):
            client.predict("   ", [], api_name="/answer")
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.post("/login", data={"username": "mallory", "password": "guess"}).status_code >= 400
    err = capfd.readouterr().err
    assert "Traceback" not in err
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("/answer request rejected: the question is empty") for line in lines), lines
    assert any(line == "login refused for user 'mallory'" for line in lines), lines
    assert all("\n" not in line for line in lines)


@pytest.mark.integration
def test_browser_login_wrong_then_right(browser, auth_server):
    url, _ = auth_server
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(url)
        page.get_by_label("username").fill(USER)
        page.get_by_label("password").fill("wrong")
        page.get_by_role("button", name="Login").click()
        page.get_by_text(re.compile("incorrect credentials", re.I)).wait_for()
        assert page.locator("#ea-question textarea").count() == 0
        page.get_by_label("username").fill(USER)  # the form is cleared after a refusal
        page.get_by_label("password").fill(PASSWORD)
        page.get_by_role("button", name="Login").click()
        page.locator("#ea-question textarea").fill("Who wrote the essay?")
        page.locator("#ea-question textarea").press("Enter")
        page.locator("#ea-chat .ea-answer").first.wait_for()
        assert "Ian Wong" in page.locator("#ea-chat .ea-answer").first.inner_text()
    finally:
        context.close()


@pytest.mark.unit
@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_remote_host_needs_a_login(host, fake_settings):
    from assistant.api import Assistant

    with pytest.raises(ValueError, match="without a login: .*no_auth=True"):
        ui.launch(Assistant(fake_settings), host=host, port=1, block=False)


@pytest.mark.unit
def test_cli_remote_host_needs_auth_file_or_no_auth(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(ui, "launch", lambda *args, **kwargs: calls.append(kwargs))
    runner = CliRunner()
    refused = runner.invoke(cli_app, ["chat", "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "--auth-file" in refused.output and "--no-auth" in refused.output
    assert calls == []

    anyone = runner.invoke(cli_app, ["chat", "--host", "0.0.0.0", "--no-auth"])
    assert anyone.exit_code == 0, anyone.output
    assert "warning: serving on 0.0.0.0:7860 with no login" in anyone.output
    assert calls[-1]["no_auth"] is True and calls[-1]["auth"] is None

    users = tmp_path / "users.txt"
    users.write_text(f"{USER}:{PASSWORD}\n", encoding="utf-8")
    logged = runner.invoke(cli_app, ["chat", "--host", "0.0.0.0"], env={"ASSISTANT_AUTH_FILE": str(users)})
    assert logged.exit_code == 0, logged.output
    assert "warning" not in logged.output and calls[-1]["auth"] == [(USER, PASSWORD)]

    users.write_text("no colon here\n", encoding="utf-8")
    bad = runner.invoke(cli_app, ["chat", "--auth-file", str(users)])
    assert bad.exit_code == 2 and "line 1: expected username:password" in bad.output
    help_text = runner.invoke(cli_app, ["chat", "--help"]).output
    assert "--auth-file" in help_text and "--no-auth" in help_text and "ASSISTANT_AUTH_FILE" in help_text
