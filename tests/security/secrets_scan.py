"""detect-secrets over the tree (every file git tracks or would track) and over text a running stack produced.

The tree scan runs every detect-secrets plugin. Two kinds of hits are not secrets and are filtered by rule:
`vault:` references (the name of a secret, never its value) and, in runtime text only, hexadecimal strings (trace,
span and order ids, ledger hashes: HexHighEntropyString is off there). Anything else that is not a secret is listed
in ALLOWED with the reason, by file and detect-secrets' hash of the string, so a new hit in the same file still fails.
A value on its line may also carry `pragma: allowlist secret` (detect-secrets' own marker) with the reason beside it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.security.report import REPO, Check
from tests.security.static import tool

EXCLUDE_SECRETS = [r"^vault:"]
# (file, the first 12 hex digits of detect-secrets' hashed_secret) -> why it is not a secret
ALLOWED: dict[tuple[str, str], str] = {
    (
        "libs/platform/src/trading_platform/devstack.py",
        "16e27402a1f9",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "KAFKA_SECRET is the name of a Vault path (secret/trading/<principal>/kafka), not a value",
    (
        "services/signal/src/signal_service/bundled_models/trend-ppo/1/manifest.json",
        "635f111e1643",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "code_version: the git commit the bundled model was trained at",
    (
        "services/signal/src/signal_service/bundled_models/trend-ppo/1/manifest.json",
        "51120e3b4ef2",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "content_hash: the SHA-256 of the bundled ONNX file",
    (
        "services/signal/src/signal_service/bundled_models/trend-ppo/2/manifest.json",
        "6d5afd4f31e2",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "code_version: the git commit the bundled model was trained at",
    (
        "services/signal/src/signal_service/bundled_models/trend-ppo/2/manifest.json",
        "a17b46e897d6",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "content_hash: the SHA-256 of the bundled version's files",
    (
        "tests/deploy/test_charts.py",
        "d78148fdffdf",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "the word secretKeyRef in an assertion",
    (
        "tests/deploy/test_charts.py",
        "e3558a9712de",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "the literal a test feeds the chart to prove the schema refuses literal keys",
    (
        "tests/platform/test_settings.py",
        "90a1a48e84eb",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "the example value of a settings test (no system takes it)",
    (
        "tests/platform/test_vault.py",
        "5534a3f1bed7",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "a value a test writes to its throwaway Vault to prove a policy allows it",
    (
        "tests/platform/test_vault.py",
        "1bb3e28e1f3f",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "a value a test writes to its throwaway Vault to prove a policy forbids it",
    (
        "tests/services/gateway/helpers.py",
        "abf7aad64388",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "the password of the gateway tests' throwaway accounts",
    (
        "tests/services/gateway/test_admin.py",
        "a0f4ea7d9149",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "a password the gateway must refuse (too short)",
    (
        "tests/services/gateway/test_admin.py",
        "2d5f87f5c000",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "a password the gateway must refuse (contains the username)",
    (
        "tests/services/gateway/test_keys_and_bootstrap.py",
        "77361fca965b",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "a wrong bootstrap secret the gateway must refuse",
    (
        "tests/services/gateway/test_login.py",
        "9999c82c33dd",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "a wrong password a login test sends",
    (
        "tests/services/gateway/test_login.py",
        "d8c64feb1ce4",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "a wrong password a lockout test sends",
    (
        "charts/trading-platform/values-prod.yaml",
        "7467d2f552a6",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "the name of the gateway's TLS Secret (ingress.tls.secretName), not a value",
    (
        "charts/trading-platform/values-staging.yaml",
        "7467d2f552a6",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "the name of the gateway's TLS Secret (ingress.tls.secretName), not a value",
    (
        "tests/deploy/test_charts.py",
        "9f69849bed9d",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "the name of a TLS Secret a chart test renders",
    (
        "tests/deploy/test_charts.py",
        "fc8c5eb19480",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "a literal password a chart test feeds the schema, which must refuse it",
    (
        "tests/deploy/test_charts.py",
        "7467d2f552a6",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "the name of the gateway's TLS Secret a chart test expects",
    (
        "tests/services/gateway/test_login.py",
        "edd627bf6d79",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "a wrong password a login test sends",
    (
        "tests/services/gateway/test_platform_and_cli.py",
        "6e2171c2e6af",  # pragma: allowlist secret (a finding's hash, not a secret)
    ): "the admin passphrase of a test's throwaway gateway",
}


def tree_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(p for p in listed.split("\0") if p and (REPO / p).is_file())


def scan(paths: Iterable[str | Path], *, runtime: bool = False, root: Path = REPO) -> list[dict[str, Any]]:
    """detect-secrets' findings in the files, as {filename (relative to root), line_number, type, hashed_secret}.
    detect-secrets skips, without a word, any file outside its working directory: it runs in `root`."""
    paths = [Path(p).resolve().relative_to(root.resolve()) if Path(p).is_absolute() else Path(p) for p in paths]
    args = ["scan"]
    for pattern in EXCLUDE_SECRETS:
        args += ["--exclude-secrets", pattern]
    if runtime:
        args += ["--disable-plugin", "HexHighEntropyString"]
    run = tool("detect-secrets", *args, *[str(p) for p in paths], timeout=600, cwd=root)
    if run.returncode != 0:
        raise RuntimeError(f"detect-secrets failed: {run.stderr.strip()[-500:]}")
    results = json.loads(run.stdout)["results"]
    return [{"filename": name, **hit} for name, hits in results.items() for hit in hits]


def describe(hit: dict[str, Any]) -> str:
    return f"{hit['filename']}:{hit['line_number']} {hit['type']} (hash {hit['hashed_secret'][:12]})"


# Generated files that hold only SHA-256 digests of other tracked files, each checked by a test against the files
# it names (tests/browser/test_static.py checks the dashboard's); their digests change with every build.
HASH_MANIFESTS = frozenset({"services/gateway/src/gateway_service/static/build.json"})


def tree_secrets() -> Check:
    files = [f for f in tree_files() if f not in HASH_MANIFESTS]
    hits = scan(files)
    allowed = [h for h in hits if (h["filename"], h["hashed_secret"][:12]) in ALLOWED]
    found = [h for h in hits if (h["filename"], h["hashed_secret"][:12]) not in ALLOWED]
    stale = set(ALLOWED) - {(h["filename"], h["hashed_secret"][:12]) for h in hits}
    return Check(
        "secrets-tree",
        "0 detect-secrets findings in the tree outside the reviewed allow list",
        "fail" if found else "pass",
        f"{len(found)} findings in {len(files)} files ({len(allowed)} reviewed non-secrets allowed)",
        [describe(h) for h in found]
        + [f"allowed: {describe(h)}: {ALLOWED[(h['filename'], h['hashed_secret'][:12])]}" for h in allowed]
        + [f"allow-list entry no longer matches (remove it): {name} {digest}" for name, digest in sorted(stale)],
        {"files": len(files), "findings": len(found), "allowed": len(allowed)},
    )
