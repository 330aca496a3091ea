"""The export format as docs/ describe it: the JSON Schema (docs/export.schema.json), and the
way to join parts, run exactly as docs/export.md writes it, so that the page stays true."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jsonschema import FormatChecker
from jsonschema.validators import Draft202012Validator

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "docs" / "export.schema.json"
PAGE = REPO / "docs" / "export.md"
_CODE_BLOCK = re.compile(r"```json\n(.*)\n```", re.DOTALL)


@cache
def _validator(kind: str) -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    if kind != "any":
        schema = {**schema, "oneOf": [{"$ref": f"#/$defs/{kind}"}]}
    return Draft202012Validator(schema, format_checker=FormatChecker())


def check(document: Any, kind: Literal["export", "part", "any"] = "any") -> None:
    """Raises AssertionError naming every way `document` breaks the schema."""
    errors = [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message[:300]}"
        for error in _validator(kind).iter_errors(document)
    ]
    assert not errors, "\n".join(errors)


@cache
def _join() -> Any:
    page = PAGE.read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # noqa: S102 - the documentation's own example, from this repo
    return namespace["join"]


def join_parts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole export from its parts, by docs/export.md's `join`."""
    joined: dict[str, Any] = _join()(parts)
    return joined


def part_in(message: dict[str, Any]) -> dict[str, Any]:
    """The part a message carries, as a person would take it: the JSON attachment, or in
    Teams the code block of the message's text."""
    attachments = message.get("attachments") or []
    if attachments:
        (attachment,) = attachments
        assert attachment["contentType"] == "application/json"
        content: dict[str, Any] = attachment["content"]
        return content
    found = _CODE_BLOCK.search(str(message.get("text") or ""))
    assert found, f"no JSON code block in {message.get('text', '')[:200]!r}"
    code = found.group(1)
    assert not set("`<>&") & set(code), "Teams could take these for markup"
    part: dict[str, Any] = json.loads(code)
    return part
