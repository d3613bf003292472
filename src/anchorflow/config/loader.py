"""Read `anchorflow.yml`: YAML, `${VAR}` from the environment, validation, one line per problem.

Every problem becomes one line naming the file, the key path and what is wrong, for example
`anchorflow.yml: sources.amplitude.start: expected YYYYMMDDTHH, got '2024-13-01T00'`. Secrets come
from the environment through `${VAR}` (the process's environment first, then the `.env` file
beside the project file); a missing variable is named, its value never printed. Commands that
never contact a source load the project with `defer_source_env`: a variable missing from a
source's settings is then left empty and recorded on the source's config, and only the commands
that contact the source refuse it (`Project.require_env`). Nothing here opens a database.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Container
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, ValidationError

from anchorflow import redact
from anchorflow.config.dashboards import load_dashboards
from anchorflow.config.marts import mart_files, mart_problems
from anchorflow.config.metrics import metric_problems
from anchorflow.config.project import PROJECT_FILE, Project, unset_variable_problem
from anchorflow.errors import ConfigError
from anchorflow.sources.registry import CONFIGS

ENV_FILE = ".env"
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# What a project file may hold: far above any real project, far below what hurts.
MAX_FILE_BYTES = 10 << 20
MAX_ALIASES = 100  # `*name` uses
MAX_NODES = 100_000  # values once the aliases are expanded
MAX_DEPTH = 64  # mappings and lists inside each other


def resolve_project_file(path: str | Path | None) -> Path:
    """`--project` may name the file or its directory; the default is the current directory."""
    candidate = Path(path or ".")
    if candidate.is_dir():
        candidate = candidate / PROJECT_FILE
    if not candidate.is_file():
        raise ConfigError(
            [f"{candidate}: no project file here (run `anchorflow init` to make one)"]
        )
    return candidate


class _Refused(Exception):
    """Valid YAML, but not what a project file is: more aliases, values or nesting than one
    needs. Raised before anything is built from the file."""

    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.mark = mark


class _ProjectLoader(yaml.SafeLoader):
    """YAML for a project file. PyYAML keeps the last of a key given twice, silently, and
    expands aliases without a limit: a recursive alias is a RecursionError, a "billion laughs"
    file all the memory. Here each is one line naming the place in the file."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Refused(f"more than {MAX_ALIASES} YAML aliases (*name); write the "
                               "values out instead", mark)  # fmt: skip
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"values nested more than {MAX_DEPTH} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: its keys may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# Shorter values would mask unrelated text (a 1-character value is in most messages).
MIN_MASKED = 4


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse an alias used inside the value it names, and aliases that expand the file to
    more than MAX_NODES values: counted over the node graph, each shared node once."""
    sizes: dict[int, int] = {}
    path: set[int] = set()  # the nodes being counted: the ancestors of the one on top
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, counted = stack.pop()
        if counted:
            path.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[id(node)] > MAX_NODES:
                raise _Refused(f"YAML aliases expand this value to more than {MAX_NODES} "
                               "values; write them out instead", node.start_mark)  # fmt: skip
        elif id(node) in path:
            raise _Refused("a YAML alias (*name) is used inside the value it names",
                           node.start_mark)  # fmt: skip
        elif id(node) not in sizes:
            path.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))


def _read_yaml(file: Path, label: str) -> Any:
    """The file's one YAML document, or ConfigError in one line naming the place."""
    if file.stat().st_size > MAX_FILE_BYTES:
        raise ConfigError([f"{label}: the file is larger than {MAX_FILE_BYTES >> 20} MiB"])
    try:
        return yaml.load(file.read_text(encoding="utf-8"), Loader=_ProjectLoader)
    except UnicodeDecodeError as error:
        raise ConfigError([f"{label}: not UTF-8 text (byte {error.start})"]) from None
    except _Refused as error:
        where = f"line {error.mark.line + 1}: " if error.mark else ""
        raise ConfigError([f"{label}: {where}{error.problem}"]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = " ".join(str(getattr(error, "problem", error)).split())  # one line
        raise ConfigError([f"{label}: {where}not valid YAML ({problem})"]) from None


def load_project(
    path: str | Path | None = None,
    env: dict[str, str] | None = None,
    *,
    defer_source_env: bool = False,
) -> Project:
    """Read, interpolate and validate the project; raise ConfigError listing every problem.

    `env` replaces the process's environment and the `.env` file (tests). With
    `defer_source_env`, a variable missing from a source's settings is not a problem here: the
    setting is left empty, and `Project.require_env` refuses the source where it is contacted.
    """
    file = resolve_project_file(path)
    label = file.name
    data = _read_yaml(file, label)
    if data is None:
        raise ConfigError([
            f"{label}: the file holds no settings (it is empty, or only comments); write its "
            "sections (sources:, staging:, ...), or make a project with `anchorflow init`"
        ])  # fmt: skip
    if not isinstance(data, dict):
        raise ConfigError([
            f"{label}: expected a mapping of sections (sources:, staging:, ...) at the top "
            f"level, not a {'list' if isinstance(data, list) else 'single value'}"
        ])  # fmt: skip
    problems: list[str] = []
    used: dict[str, str] = {}
    unset: list[tuple[str, str]] | None = [] if defer_source_env else None
    environment = env if env is not None else project_environment(file.parent)
    data = _interpolate(data, environment, (), problems, label, used, unset)
    if problems:
        raise ConfigError(problems)
    try:
        project = Project.model_validate({**data, "root": file.parent.resolve(), "file": file})
    except ValidationError as error:
        raise ConfigError(_invalid(error, data, label, used, unset or [], environment)) from None
    _check_marts(project, label)
    _check_metrics(project, label)
    _check_dashboards(project)
    _record_unset(project, unset or [], environment)
    secrets = [value for name, value in used.items() if redact.is_secret_variable(name)]
    redact.add_project(project, secrets)  # before anything can print, store or send them
    return project


def project_environment(directory: Path) -> dict[str, str]:
    """The process's environment over the variables of `<directory>/.env` (python-dotenv's
    syntax): an exported variable wins, as it does for docker compose and dbt."""
    file = directory / ENV_FILE
    if not file.is_file():
        return dict(os.environ)
    found = {k: v for k, v in dotenv_values(file).items() if v is not None}
    return {**found, **os.environ}


def _invalid(
    error: ValidationError,
    data: dict[str, Any],
    label: str,
    used: dict[str, str],
    unset: list[tuple[str, str]],
    environment: dict[str, str],
) -> list[str]:
    """The problems of a file that does not validate. A setting left empty because its
    variable is not set is named by its variable, not by what the empty value breaks."""
    failed = {".".join(_key_path(item["loc"])) for item in error.errors()}
    missing = [(key, name) for key, name in unset if key in failed]
    problems = [
        unset_variable_problem(label, key, name, name in environment) for key, name in missing
    ]
    skip = {key for key, _ in missing}
    return problems + [_one_line(_masked(p, used)) for p in _describe(error, data, label, skip)]


def _record_unset(
    project: Project, unset: list[tuple[str, str]], environment: dict[str, str]
) -> None:
    """Tell each source's config which of its settings wait for a variable (missing, or set
    to nothing)."""
    for name, config in project.sources.items():
        config._unset_env = tuple((k, v) for k, v in unset if k.split(".")[1] == name)
        config._empty_env = frozenset(v for _, v in config._unset_env if v in environment)


def _interpolate(
    node: Any,
    env: dict[str, str],
    path: tuple[str, ...],
    problems: list[str],
    label: str,
    used: dict[str, str],
    unset: list[tuple[str, str]] | None = None,
) -> Any:
    """`${VAR}` and `${VAR:-default}` replaced from `env`; `used` collects what was read.
    With `unset` (a list), a variable missing inside `sources.<name>` is collected there as
    (key path, variable) and replaced by nothing, instead of being a problem."""
    if isinstance(node, dict):
        return {
            k: _interpolate(v, env, (*path, str(k)), problems, label, used, unset)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [
            _interpolate(v, env, (*path, str(i)), problems, label, used, unset)
            for i, v in enumerate(node)
        ]
    if not isinstance(node, str):
        return node

    in_source = len(path) > 2 and path[0] == "sources"

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        # In a source's settings an empty value without a default is refused like a missing
        # one: `NAME=` copied from `.env.example` and never filled in would otherwise send
        # empty credentials (and get a 401).
        if value is not None and (value or default is not None or not in_source):
            used[name] = value
            return value
        if default is not None:
            return default
        if unset is not None and in_source:
            unset.append((".".join(path), name))
        else:
            problems.append(unset_variable_problem(label, ".".join(path), name, value == ""))
        return ""

    return ENV_REF.sub(substitute, node)


def _masked(problem: str, used: dict[str, str]) -> str:
    """A problem that quotes a value read from the environment names the variable instead: the
    value may be a secret (a key put in the wrong field, or reused in another)."""
    for name, value in sorted(used.items(), key=lambda item: -len(item[1])):
        if len(value) >= MIN_MASKED:
            problem = problem.replace(value, f"${{{name}}}")
    return problem


def _one_line(problem: str) -> str:
    """A key or value with a newline or another control character, escaped as Python would."""
    if problem.isprintable():
        return problem
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in problem)


def _describe(
    error: ValidationError, data: dict[str, Any], label: str, skip: Container[str] = ()
) -> list[str]:
    lines = []
    for item in error.errors():
        loc = _key_path(item["loc"])
        key = ".".join(loc)
        if key in skip:
            continue
        if item["type"] == "union_tag_invalid":
            kind = item["input"].get("kind") if isinstance(item["input"], dict) else None
            hint = _did_you_mean(str(kind), list(CONFIGS))
            kinds = ", ".join(CONFIGS)
            lines.append(f"{label}: {key}.kind: unknown kind {kind!r}{hint}; known: {kinds}")
            continue
        if item["type"] == "extra_forbidden":
            parent = ".".join(loc[:-1])
            hint = _did_you_mean(loc[-1], _allowed_keys(loc[:-1], data))
            lines.append(f"{label}: {parent + ': ' if parent else ''}unknown key {loc[-1]!r}{hint}")
            continue
        if item["type"] == "union_tag_not_found":
            lines.append(f"{label}: {key}.kind: required key is missing")
            continue
        if item["type"] == "missing":
            lines.append(f"{label}: {key}: required key is missing")
            continue
        message = str(item["msg"]).removeprefix("Value error, ")
        # already names its key path
        if message.startswith(("staging.", "sources.", "anchor.", "metrics.")):
            lines.append(f"{label}: {message}")
        else:
            lines.append(f"{label}: {key}: {message}")
    return lines


def _key_path(loc: tuple[Any, ...]) -> list[str]:
    """pydantic's location without its internal steps (validator wrappers, union tags)."""
    parts = [str(p) for p in loc if not str(p).startswith("function-") and p != "[key]"]
    if len(parts) >= 3 and parts[0] == "sources" and parts[2] in CONFIGS:
        del parts[2]  # the discriminator tag pydantic inserts after the source's name
    return parts


def _allowed_keys(loc: list[str], data: dict[str, Any]) -> list[str]:
    """The keys the model at `loc` accepts, found by walking the model classes."""
    model: Any = Project
    node: Any = data
    for depth, part in enumerate(loc):
        node = node.get(part) if isinstance(node, dict) else None
        if depth == 1 and loc[0] == "sources":  # a source: the model its kind names
            model = CONFIGS.get(str(node.get("kind"))) if isinstance(node, dict) else None
            continue
        field = model.model_fields.get(part) if model else None
        if field is None:  # inside a dict of named items: the item's model
            continue
        model = _model_of(field.annotation, node)
    if model is Project:
        return [k for k in Project.model_fields if k not in {"root", "file"}]
    return list(model.model_fields) if model else []


def _model_of(annotation: Any, node: Any) -> Any:
    args = getattr(annotation, "__args__", ())
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in reversed(args):  # dict[K, V] → V; Annotated[...] → first
        found = _model_of(getattr(arg, "__origin__", arg), node)
        if found is not None:
            return found
    return None


def _did_you_mean(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_marts(project: Project, label: str) -> None:
    """Every mart file parses as one SELECT over tables the project makes, and no marts read
    each other in a loop; each problem names the file."""
    problems = mart_problems(project)
    if problems:
        raise ConfigError([f"{label}: marts: {p}" for p in problems])


def _check_metrics(project: Project, label: str) -> None:
    """Every table a semantic model reads is one the project makes, with the columns named."""
    problems = metric_problems(project, list(mart_files(project.marts_path)))
    if problems:
        raise ConfigError([f"{label}: {p}" for p in problems])


def _check_dashboards(project: Project) -> None:
    """Every `dashboards/<name>.yml` reads as a dashboard; each problem names its file."""
    try:
        load_dashboards(project)
    except ValueError as error:
        raise ConfigError(str(error).splitlines()) from None
