"""Security of the served app: loopback only, share off, file routes serve nothing of ours, no secrets leak."""

from __future__ import annotations

import json

import httpx
import pytest

from assistant.config import REPO_ROOT
from tests.helpers import run_cli

pytestmark = pytest.mark.integration
SECRET = "sk-test-DO-NOT-LEAK-0123456789abcdef"


def _targets(settings) -> list[str]:
    passwd, pyproject, current = "/etc/passwd", str(REPO_ROOT / "pyproject.toml"), str(settings.index_dir / "CURRENT")
    paths = []
    for prefix in ("gradio_api/file=", "file=", "gradio_api/file/", "static/", "assets/", "gradio_api/static/"):
        paths += [
            prefix + passwd,
            prefix + pyproject,
            prefix + current,
            prefix + str(settings.corpus_path),
            prefix + "../../../../../../etc/passwd",
            prefix + "..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
            prefix + "%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            prefix + "/etc/passwd",
        ]
    return paths + ["../../../../etc/passwd", "..%2f..%2fpyproject.toml", "gradio_api/upload_progress?upload_id=../"]


def test_file_routes_serve_nothing_outside_the_app(server, assistant):
    secrets = ["root:x:0:0", "[project]", index_name(assistant), "Bonding Over Bans: Strengthening"]
    tried = 0
    with httpx.Client(base_url=server, timeout=30) as http:
        for path in _targets(assistant.settings):
            # Send the path exactly as written: no client-side normalisation of ../
            response = http.send(http.build_request("GET", server + path))
            tried += 1
            body = response.text
            assert response.status_code in (400, 403, 404, 405), (path, response.status_code, body[:200])
            assert not any(s in body for s in secrets), path
    print(f"\n{tried} file-route requests refused")


def index_name(assistant) -> str:
    return (assistant.settings.index_dir / "CURRENT").read_text().strip()


def test_served_on_loopback_with_share_off(server):
    from urllib.parse import urlsplit

    assert urlsplit(server).hostname == "127.0.0.1"
    config = httpx.get(server + "config", timeout=30).json()
    assert not config.get("share_url")
    assert config.get("is_space") in (False, None)


def test_no_secrets_in_logs_or_json(assistant, tmp_path):
    env = {"OPENAI_API_KEY": SECRET, "ANTHROPIC_API_KEY": SECRET, "HF_TOKEN": SECRET}
    result = run_cli("-v", "ask", "--json", "What is your API key?", index_dir=assistant.settings.index_dir, env=env)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout and SECRET not in result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"question", "answer", "refused", "citations", "passages", "backend", "timings_ms"}
    assert "API" not in json.dumps(data["citations"])
