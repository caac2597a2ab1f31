"""The admin API's OpenAPI document rendered as one self-contained HTML page (``GET /docs``).

Rendered on the server, with no script, no stylesheet or font to fetch and no CDN: the page works
where the API works (LISA's ``/docs`` answers HTML too; lisapy's ``list_docs`` reads it as text).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;"
    "line-height:1.45}table{border-collapse:collapse;margin:.5rem 0 1rem}"
    "td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}"
    "code{background:#f3f3f3;padding:0 .2rem}h2{border-top:1px solid #ddd;padding-top:1rem}"
    ".method{font-family:monospace;font-weight:bold}"
)
METHODS = ("get", "post", "put", "patch", "delete")
_SCHEMA_PREFIX = "#/components/schemas/"


def _text(value: Any) -> str:
    return escape(str(value))


def _anchor(kind: str, name: str) -> str:
    return f"{kind}-" + "".join(char if char.isalnum() else "-" for char in name)


def type_html(schema: dict[str, Any]) -> str:
    """A schema's type in a few words; a referenced schema is a link to its section."""
    if "$ref" in schema:
        name = str(schema["$ref"]).removeprefix(_SCHEMA_PREFIX)
        return f'<a href="#{_anchor("schema", name)}">{_text(name)}</a>'
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return " | ".join(type_html(option) for option in schema[combinator])
    if "enum" in schema:
        return "one of " + ", ".join(f"<code>{_text(value)}</code>" for value in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return "list of " + type_html(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "map of string to " + type_html(schema["additionalProperties"])
    if "const" in schema:
        return f"<code>{_text(schema['const'])}</code>"
    return _text(kind or "any")


def _table(headings: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    if not rows:
        return []
    head = "".join(f"<th>{heading}</th>" for heading in headings)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return [f"<table><tr>{head}</tr>{body}</table>"]


def _content_type(content: dict[str, Any]) -> str:
    return "; ".join(
        f"<code>{_text(media)}</code> {type_html(spec.get('schema', {}))}" for media, spec in content.items()
    )


def _operation(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    parts = [
        f'<h2 id="{_anchor(method, path)}"><span class="method">{method.upper()}</span> '
        f"<code>{_text(path)}</code></h2>",
        f"<p><strong>{_text(operation.get('summary', ''))}</strong></p>",
        f"<p>{_text(operation.get('description', ''))}</p>",
    ]
    parameters = [
        (
            f"<code>{_text(parameter['name'])}</code>",
            _text(parameter.get("in", "")),
            "yes" if parameter.get("required") else "no",
            type_html(parameter.get("schema", {})),
            _text(parameter.get("description", "")),
        )
        for parameter in operation.get("parameters", [])
    ]
    parts += _table(("Parameter", "In", "Required", "Type", "Description"), parameters)
    if body := operation.get("requestBody"):
        parts.append(f"<p>Request body: {_content_type(body.get('content', {}))}</p>")
    responses = [
        (_text(status), _text(answer.get("description", "")), _content_type(answer.get("content", {})))
        for status, answer in sorted(operation.get("responses", {}).items())
    ]
    parts += _table(("Status", "Meaning", "Body"), responses)
    return parts


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    parts = [f'<h3 id="{_anchor("schema", name)}">{_text(name)}</h3>']
    if description := schema.get("description"):
        parts.append(f"<p>{_text(description)}</p>")
    required = set(schema.get("required", []))
    rows = [
        (
            f"<code>{_text(field)}</code>",
            type_html(spec),
            "yes" if field in required else "no",
            _text(json.dumps(spec["default"])) if "default" in spec else "",
            _text(spec.get("description", "")),
        )
        for field, spec in schema.get("properties", {}).items()
    ]
    if rows:
        parts += _table(("Field", "Type", "Required", "Default", "Description"), rows)
    elif "properties" not in schema:
        parts.append(f"<p>{type_html(schema)}</p>")
    return parts


def render(document: dict[str, Any]) -> str:
    """The whole page for an OpenAPI 3 document."""
    info = document.get("info", {})
    title = _text(info.get("title", "API"))
    operations = [
        (path, method, item[method])
        for path, item in document.get("paths", {}).items()
        for method in METHODS
        if method in item
    ]
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{STYLE}</style></head><body>',
        f"<h1>{title} <small>{_text(info.get('version', ''))}</small></h1>",
        f"<p>{_text(info.get('description', ''))}</p>",
        "<h2>Authentication</h2>",
        *_table(
            ("Scheme", "Description"),
            [
                (f"<code>{_text(name)}</code>", _text(scheme.get("description", "")))
                for name, scheme in document.get("components", {}).get("securitySchemes", {}).items()
            ],
        ),
        "<h2>Routes</h2><ul>",
        *(
            f'<li><a href="#{_anchor(method, path)}"><span class="method">{method.upper()}</span> '
            f"<code>{_text(path)}</code></a>: {_text(operation.get('summary', ''))}</li>"
            for path, method, operation in operations
        ),
        "</ul>",
    ]
    for path, method, operation in operations:
        parts += _operation(path, method, operation)
    parts.append("<h2>Schemas</h2>")
    for name, schema in sorted(document.get("components", {}).get("schemas", {}).items()):
        parts += _schema(name, schema)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
