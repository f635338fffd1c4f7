"""GitHub workflows and skaffold.yaml, checked offline.

Workflows: each parses, has triggers and jobs, pins every action to a version (or a commit), holds no secret literal
(only `${{ secrets.X }}`), and calls only make targets that the Makefile has. The matrices name every service.
skaffold.yaml: an artifact per service image built from the repo root, the umbrella chart wired to each image, and
the dev/staging/prod profiles each adding its values file.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted([*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob(".github/workflows/*.yaml")])
SERVICES = sorted(p.parent.name for p in ROOT.glob("services/*/Dockerfile"))
ENVIRONMENTS = ("dev", "staging", "prod")
CLOUDS = ("eks", "gke", "aks")
# The paper exchange is a stand-in broker and the gateway consumes no topic (a rolling Deployment: a shadow colour
# would write into the live users and sessions): both are redeployed with helm, never promoted.
PROMOTED = [s for s in SERVICES if s not in ("paper-exchange", "gateway")]
UMBRELLA = "charts/trading-platform"

ACTION_REF = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@(?P<ref>.+)$")
VERSION_REF = re.compile(r"^v?\d+(\.\d+){0,2}$")
COMMIT_REF = re.compile(r"^[0-9a-f]{40}$")
EXPRESSION = re.compile(r"^\$\{\{\s*(secrets\.\w+|github\.token|inputs\.\w+|vars\.\w+)\s*\}\}$")
SECRET_KEY = re.compile(r"(?i)(secret|token|password|passwd|api[_-]?key|private[_-]?key|credential)")
TOKEN_SHAPES = {
    "GitHub token": re.compile(r"\b(ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{30,}"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "Alpaca key id": re.compile(r"\b(PK|AK)[A-Z0-9]{18}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
}


def load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def triggers(workflow: dict[Any, Any]) -> Any:
    # YAML 1.1 reads the bare key `on` as the boolean true.
    return workflow.get("on", workflow.get(True))


def walk(node: Any, path: tuple[str, ...] = ()) -> Any:
    """Every (path, key, value) of a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, str(key), value
            yield from walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, str(index)))


def run_scripts(workflow: dict[str, Any]) -> list[str]:
    return [value for _, key, value in walk(workflow) if key == "run" and isinstance(value, str)]


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {m[1] for m in re.finditer(r"^([A-Za-z0-9][\w.-]*)\s*:(?!=)", text, re.M)}


def make_targets_called(script: str) -> set[str]:
    targets = set()
    for match in re.finditer(r"(?:^|[\s;&|(])make\s+([^;&|\n]*)", script):
        words = match[1].split()
        skip_next = False
        for word in words:
            if skip_next:
                skip_next = False
            elif word in ("-C", "-f", "-j", "-I", "-o", "-W"):
                skip_next = True
            elif word.startswith("-") or "=" in word or word.startswith(("$", '"', "'")):
                continue
            elif re.fullmatch(r"[A-Za-z0-9][\w.-]*", word):
                targets.add(word)
    return targets


def matrix_services(workflow: dict[str, Any]) -> list[list[str]]:
    return [value for _, key, value in walk(workflow) if key == "service" and isinstance(value, list)]


# --- every workflow ---------------------------------------------------------------------------------------------------


def test_the_expected_workflows_exist() -> None:
    names = {p.stem for p in WORKFLOWS}
    assert {"ci", "security", "images", "charts", "release", "deploy"} <= names, sorted(names)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_parses_with_triggers_and_jobs(path: Path) -> None:
    workflow = load(path)
    assert isinstance(workflow, dict), path.name
    assert workflow.get("name"), f"{path.name}: name it"
    assert triggers(workflow), f"{path.name}: no `on:` triggers"
    jobs = workflow.get("jobs")
    assert isinstance(jobs, dict) and jobs, f"{path.name}: no jobs"
    for name, job in jobs.items():
        assert "uses" in job or ("runs-on" in job and job.get("steps")), f"{path.name}: job {name} runs nothing"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned(path: Path) -> None:
    unpinned = []
    for _, key, value in walk(load(path)):
        if key != "uses" or not isinstance(value, str) or value.startswith("./"):
            continue
        if value.startswith("docker://"):
            image = value.removeprefix("docker://")
            if not ("@sha256:" in image or re.search(r":[^:/]*\d[^:/]*$", image)):
                unpinned.append(value)
            continue
        match = ACTION_REF.match(value)
        ref = match["ref"] if match else ""
        if not (VERSION_REF.match(ref) or COMMIT_REF.match(ref)):
            unpinned.append(value)
    assert not unpinned, f"{path.name}: pin these to a version tag (@v4) or a commit: {unpinned}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_secret_literal(path: Path) -> None:
    text = path.read_text()
    found = [kind for kind, shape in TOKEN_SHAPES.items() if shape.search(text)]
    for where, key, value in walk(load(path)):
        if "permissions" in where or key == "permissions" or not SECRET_KEY.search(key):
            continue
        if isinstance(value, (str, int, float)) and not EXPRESSION.match(str(value).strip()):
            if key == "secrets" and value == "inherit":
                continue
            found.append(f"{'.'.join(where)}.{key}: {value!r}")
    assert not found, f"{path.name}: secrets must come from ${{{{ secrets.X }}}}, found {found}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_make_target_exists(path: Path) -> None:
    available = makefile_targets()
    called = set().union(*(make_targets_called(s) for s in run_scripts(load(path))))
    assert called <= available, f"{path.name}: no such make target(s) {sorted(called - available)}"


def test_make_target_parsing() -> None:
    assert make_targets_called('make promote SERVICE="$SERVICE" COLOUR="$COLOUR"') == {"promote"}
    assert make_targets_called("make install && .venv/bin/pytest\nmake -C sub lint test") == {"install", "lint", "test"}
    assert make_targets_called("echo make-believe; cmake build") == set()


# --- what each workflow is for ----------------------------------------------------------------------------------------


def workflow(name: str) -> dict[str, Any]:
    return load(ROOT / ".github" / "workflows" / f"{name}.yml")


def test_ci_runs_lint_types_and_tests() -> None:
    called = set().union(*(make_targets_called(s) for s in run_scripts(workflow("ci"))))
    assert {"lint", "typecheck", "test"} <= called


def test_security_scans_secrets_code_dependencies_and_images() -> None:
    security = workflow("security")
    uses = [value for _, key, value in walk(security) if key == "uses"]
    scripts = "\n".join(run_scripts(security))
    assert any(u.startswith("gitleaks/gitleaks-action@") for u in uses)
    assert re.search(r"pip install .*bandit==\d", scripts) and "bandit -r" in scripts
    assert re.search(r"pip install .*pip-audit==\d", scripts) and "--requirement requirements.lock" in scripts
    scan_types = {value for _, key, value in walk(security) if key == "scan-type"}
    assert {"fs", "image"} <= scan_types
    assert sorted(matrix_services(security)[0]) == SERVICES


def test_images_and_release_cover_every_service() -> None:
    images = workflow("images")
    assert [sorted(m) for m in matrix_services(images)] == [SERVICES]
    release_jobs = workflow("release")["jobs"]
    assert release_jobs["images"]["uses"] == "./.github/workflows/images.yml"
    assert release_jobs["images"]["with"]["push"] is True
    assert triggers(workflow("release"))["push"]["tags"] == ["v*"]


def test_charts_runs_the_deploy_tests_and_helm_lint() -> None:
    charts = workflow("charts")
    scripts = "\n".join(run_scripts(charts))
    assert "pytest tests/deploy" in scripts and "helm lint" in scripts
    assert any(str(value).startswith("azure/setup-helm@") for _, key, value in walk(charts) if key == "uses")


def test_deploy_is_a_manual_blue_green_promotion_with_rollback() -> None:
    deploy = workflow("deploy")
    inputs = triggers(deploy)["workflow_dispatch"]["inputs"]
    assert inputs["environment"]["options"] == list(ENVIRONMENTS)
    assert sorted(inputs["service"]["options"]) == PROMOTED
    assert inputs["colour"]["options"] == ["blue", "green"]
    (job,) = deploy["jobs"].values()
    assert job["environment"] == "${{ inputs.environment }}", "approvals come from the GitHub environment"
    steps = job["steps"]
    promote = next(i for i, s in enumerate(steps) if "make promote" in s.get("run", ""))
    rollback = next(i for i, s in enumerate(steps) if "make rollback" in s.get("run", ""))
    upgrade = next(i for i, s in enumerate(steps) if "helm upgrade" in s.get("run", ""))
    assert upgrade < promote < rollback
    assert "failure()" in steps[rollback]["if"]
    assert 'COLOUR="$COLOUR"' in steps[promote]["run"]


# --- skaffold.yaml ----------------------------------------------------------------------------------------------------


def skaffold() -> dict[str, Any]:
    return load(ROOT / "skaffold.yaml")


def template_name(image: str) -> str:
    """skaffold's template variable suffix for an image: every non-alphanumeric character becomes `_`."""
    return re.sub(r"[^A-Za-z0-9]", "_", image)


def apply_patches(config: dict[str, Any], patches: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON-patch subset profiles use here: add and replace."""
    result = copy.deepcopy(config)
    for patch in patches:
        *parents, last = patch["path"].strip("/").split("/")
        target: Any = result
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if patch["op"] == "add" and isinstance(target, list):
            target.insert(len(target) if last == "-" else int(last), patch["value"])
        elif patch["op"] in ("add", "replace"):
            if patch["op"] == "replace":
                assert (int(last) < len(target)) if isinstance(target, list) else (last in target), patch["path"]
            target[int(last) if isinstance(target, list) else last] = patch["value"]
        else:
            raise AssertionError(f"unsupported patch op {patch['op']}")
    return result


def profile(*names: str) -> dict[str, Any]:
    """The config with these profiles applied in order, as `skaffold -p a,b` does."""
    config = skaffold()
    result = {k: v for k, v in config.items() if k != "profiles"}
    for name in names:
        (spec,) = [p for p in config["profiles"] if p["name"] == name]
        result = apply_patches(result, spec.get("patches", []))
    return result


def test_skaffold_builds_every_service_from_the_repo_root() -> None:
    config = skaffold()
    assert config["apiVersion"] == "skaffold/v4beta11" and config["kind"] == "Config"
    artifacts = {a["image"]: a for a in config["build"]["artifacts"]}
    assert sorted(artifacts) == [f"trading/{s}" for s in SERVICES]
    for service in SERVICES:
        artifact = artifacts[f"trading/{service}"]
        assert artifact["context"] == "."
        dockerfile = artifact["docker"]["dockerfile"]
        assert dockerfile == f"services/{service}/Dockerfile" and (ROOT / dockerfile).exists()


def test_skaffold_wires_each_image_into_its_chart() -> None:
    (release,) = skaffold()["deploy"]["helm"]["releases"]
    assert release["chartPath"] == UMBRELLA
    templates = release["setValueTemplates"]
    expected = {}
    for service in SERVICES:
        suffix = template_name(f"trading/{service}")
        expected[f"{service}.image.repository"] = f"{{{{.IMAGE_REPO_{suffix}}}}}"
        expected[f"{service}.image.tag"] = f"{{{{.IMAGE_TAG_{suffix}}}}}"
    assert templates == expected
    # The repositories above already carry the registry; a cloud file's global.imageRegistry must not prefix it again.
    assert release["setValues"] == {"global.imageRegistry": ""}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_skaffold_profile_adds_its_values_file(environment: str) -> None:
    config = profile(environment)
    (release,) = config["deploy"]["helm"]["releases"]
    assert release["valuesFiles"] == [f"{UMBRELLA}/values-{environment}.yaml"]
    assert config["build"]["local"]["push"] is (environment != "dev"), "dev loads images; staging and prod push"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_skaffold_cloud_profile_layers_its_file_on_an_environment(cloud: str) -> None:
    (release,) = profile("prod", cloud)["deploy"]["helm"]["releases"]
    assert release["valuesFiles"] == [f"{UMBRELLA}/values-prod.yaml", f"{UMBRELLA}/values-{cloud}.yaml"]


def test_skaffold_has_exactly_the_agreed_profiles() -> None:
    assert [p["name"] for p in skaffold()["profiles"]] == [*ENVIRONMENTS, *CLOUDS]


@pytest.mark.parametrize("profiles", [(e,) for e in ENVIRONMENTS] + [("staging", c) for c in CLOUDS], ids=str)
def test_skaffold_values_files_exist(profiles: tuple[str, ...]) -> None:
    if not (ROOT / UMBRELLA / "Chart.yaml").exists():
        pytest.skip(f"{UMBRELLA} is not in the tree yet")
    (release,) = profile(*profiles)["deploy"]["helm"]["releases"]
    for values in release["valuesFiles"]:
        assert (ROOT / values).exists(), values


def test_chart_names_match_the_value_keys() -> None:
    if not (ROOT / UMBRELLA / "Chart.yaml").exists():
        pytest.skip(f"{UMBRELLA} is not in the tree yet")
    dependencies = load(ROOT / UMBRELLA / "Chart.yaml").get("dependencies", [])
    names = {d.get("alias") or d["name"] for d in dependencies}
    missing = sorted(set(SERVICES) - names)
    assert not missing, f"the umbrella chart has no subchart (or alias) named {missing}"


def test_release_name_matches_the_vault_roles() -> None:
    """Vault roles are bound to ServiceAccounts <release>-<service>: skaffold and deploy.yml must use that release."""
    roles = ROOT / "k8s" / "vault" / "roles.sh"
    if not roles.exists():
        pytest.skip("k8s/vault/roles.sh is not in the tree yet")
    match = re.search(r'RELEASE="\$\{RELEASE:-([\w-]+)\}"', roles.read_text())
    assert match, "roles.sh no longer defaults RELEASE"
    (release,) = skaffold()["deploy"]["helm"]["releases"]
    assert release["name"] == match[1]
    assert workflow("deploy")["jobs"]["deploy"]["env"]["RELEASE"] == match[1]
