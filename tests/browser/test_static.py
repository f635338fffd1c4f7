"""The dashboard as the gateway serves it, without a browser: the committed build is the build of the committed
sources (so a machine without npm serves what the sources say), the page and its assets are served with the
security headers, nothing is inline (the CSP forbids it), and nothing but the build's own files can be asked for."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from gateway_service.app import create_app

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "services" / "gateway" / "dashboard"
STATIC = ROOT / "services" / "gateway" / "src" / "gateway_service" / "static"


def source_files() -> list[str]:
    """The inputs of a build in the order build.mjs hashes them (sourceFiles() there)."""

    def walk(folder: Path) -> list[Path]:
        found: list[Path] = []
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            found.extend(walk(entry) if entry.is_dir() else [entry])
        return found

    return ["package.json", "package-lock.json", "build.mjs"] + [
        p.relative_to(DASHBOARD).as_posix() for p in walk(DASHBOARD / "src")
    ]


def sources_digest() -> str:
    digest = hashlib.sha256()
    for name in source_files():
        digest.update(name.encode() + b"\0" + (DASHBOARD / name).read_bytes() + b"\0")
    return digest.hexdigest()


def manifest() -> dict[str, object]:
    return json.loads((STATIC / "build.json").read_text())  # type: ignore[no-any-return]


def test_the_committed_build_is_the_build_of_the_committed_sources() -> None:
    built = manifest()
    assert built["sources_sha256"] == sources_digest(), (
        "the dashboard's sources changed since its build: cd services/gateway/dashboard && npm ci && npm run build"
    )
    files = built["files"]
    assert isinstance(files, dict)
    on_disk = {p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file()} - {"build.json"}
    assert on_disk == set(files), "static/ holds files the build did not make (or lacks some it made)"
    for name, sha in files.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == sha, f"{name} was edited after the build"
    lock = json.loads((DASHBOARD / "package-lock.json").read_text())
    assert built["uplot"] == lock["packages"]["node_modules/uplot"]["version"]


def test_every_dependency_is_pinned_exactly() -> None:
    package = json.loads((DASHBOARD / "package.json").read_text())
    for section in ("dependencies", "devDependencies"):
        for name, version in package.get(section, {}).items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{section}.{name} must be an exact version, not {version}"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed: the rebuild check needs it")
def test_npm_ci_and_build_reproduce_the_committed_files(tmp_path: Path) -> None:
    """From the lock alone (npm ci in a copy, install scripts off), the build is byte for byte the committed one."""
    work = tmp_path / "dashboard"
    shutil.copytree(DASHBOARD, work, ignore=shutil.ignore_patterns("node_modules"))
    subprocess.run(
        ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=work, check=True, capture_output=True
    )
    out = tmp_path / "static"
    subprocess.run(["node", "build.mjs", "--out", str(out)], cwd=work, check=True, capture_output=True)
    rebuilt = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    committed = {p.relative_to(STATIC).as_posix(): p.read_bytes() for p in STATIC.rglob("*") if p.is_file()}
    assert rebuilt.keys() == committed.keys()
    for name, content in committed.items():
        assert rebuilt[name] == content, f"{name} differs from a fresh build"


@pytest.fixture
def client() -> httpx.AsyncClient:
    # No engine: the dashboard's routes are public and static, they need none.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url="http://gateway")


async def test_the_page_is_served_at_the_root_and_every_app_path(client: httpx.AsyncClient) -> None:
    index = (STATIC / "index.html").read_bytes()
    for path in ("/", "/app", "/app/overview", "/app/orders/co-AAPL-1"):
        answer = await client.get(path)
        assert answer.status_code == 200, path
        assert answer.content == index
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["cache-control"] == "no-cache"
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp


def test_the_page_has_no_inline_script_or_style_and_no_other_origin() -> None:
    page = (STATIC / "index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", page, flags=re.S)
    assert scripts == [""], "one script, loaded by src, nothing inline"
    assert re.findall(r"<script\b([^>]*)>", page) == [f' type="module" src="/assets/{_built("main-*.js")}"']
    # the modules the first one imports are preloaded with it (app.js is a dynamic import, fetched at once anyway)
    others = sorted(p.name for p in (STATIC / "assets").glob("*.js") if not p.name.startswith("main-"))
    assert others, "the build splits the app from its first module"
    assert re.findall(r'<link rel="modulepreload" href="/assets/([^"]+)">', page) == others
    assert "<style" not in page and "style=" not in page and not re.search(r"\son[a-z]+=", page)
    assert not re.search(r"(src|href)=\"(https?:)?//", page), "every asset is served from this origin (no CDN)"
    for source in (DASHBOARD / "src").rglob("*.js"):
        text = source.read_text()
        for markup in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", 'setAttribute("style'):
            assert markup not in text, f"{source.name} builds markup from a string ({markup})"


def _built(pattern: str) -> str:
    (found,) = (STATIC / "assets").glob(pattern)
    return found.name


async def test_each_built_asset_is_served_by_name_with_its_type_and_cached(client: httpx.AsyncClient) -> None:
    built = sorted((STATIC / "assets").iterdir())
    assert {p.suffix for p in built} == {".js", ".css"}
    for path in built:
        media = {".js": "text/javascript", ".css": "text/css"}[path.suffix]
        answer = await client.get(f"/assets/{path.name}")
        assert answer.status_code == 200
        assert answer.content == path.read_bytes()
        assert answer.headers["content-type"].startswith(media)
        assert "immutable" in answer.headers["cache-control"]
        assert answer.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("name", ["nothing.js", "..%2Fbuild.json", "%2E%2E%2F%2E%2E%2Fapp.py", "app.py", "build.json"])
async def test_nothing_outside_the_build_can_be_asked_for(client: httpx.AsyncClient, name: str) -> None:
    answer = await client.get(f"/assets/{name}")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert b"Traceback" not in answer.content
