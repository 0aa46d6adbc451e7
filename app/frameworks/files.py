"""Decode and encode framework files as JSON or YAML, refusing what could blow up memory."""

import json
from typing import Any

import yaml

from app.errors import FieldError, InvalidInput

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
MAX_DEPTH = 32


def _depth_ok(data: Any, depth: int = 0) -> bool:
    if depth > MAX_DEPTH:
        return False
    if isinstance(data, dict):
        return all(_depth_ok(v, depth + 1) for v in data.values())
    if isinstance(data, list):
        return all(_depth_ok(v, depth + 1) for v in data)
    return True


def _refuse(msg: str) -> InvalidInput:
    return InvalidInput(msg, errors=[FieldError(loc=["body"], msg=msg, type="parse_error")])


def is_yaml(content_type: str | None, filename: str | None = None) -> bool:
    """True when a media type or file name says YAML."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media in YAML_TYPES or bool(filename and filename.endswith((".yaml", ".yml")))


def _scan_yaml(text: str) -> None:
    """Refuse what would make loading expensive, before loading: aliases and deep nesting."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        # Anchors and aliases can expand into huge documents; a framework never needs them.
        if isinstance(event, yaml.AliasEvent):
            raise _refuse("YAML aliases are not allowed in framework files.")
        # The loader recurses once per level: stop a deep file here, without loading it.
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH + 1:
                raise _refuse(f"The file nests deeper than {MAX_DEPTH} levels.")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def load_file(raw: bytes, filename: str | None = None, content_type: str | None = None) -> Any:
    """Decode a JSON or YAML framework file into plain data."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse("The file is not valid UTF-8.") from None
    if "\x00" in text:
        raise _refuse("The file contains NUL characters.")
    if is_yaml(content_type, filename):
        try:
            _scan_yaml(text)
            data = yaml.safe_load(text)
        except (yaml.YAMLError, ValueError) as exc:
            # ValueError: an integer longer than Python converts (sys.get_int_max_str_digits).
            raise _refuse(
                f"The YAML could not be parsed: {exc}".replace("\x00", "")[:1000]
            ) from None
    else:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            # ValueError covers syntax errors and integers longer than Python converts.
            raise _refuse(f"The JSON could not be parsed: {exc}"[:1000]) from None
    if not _depth_ok(data):
        raise _refuse(f"The file nests deeper than {MAX_DEPTH} levels.")
    return data


def dump_yaml(data: Any) -> str:
    """YAML text for an exported framework, in document order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
