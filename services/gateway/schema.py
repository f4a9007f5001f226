"""A small JSON Schema subset: one declaration validates input and documents it in OpenAPI.

Schemas are plain JSON Schema dicts (as OpenAPI 3.1 wants them), built with the
helpers below; :func:`validate` understands exactly what the helpers produce
and returns field-level reasons (``{"field.path": "why"}``), never raising on
hostile input.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

Schema = dict[str, Any]
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def string(min_length: int | None = None, max_length: int | None = None, *,
           pattern: str | None = None, enum: list[str] | None = None,
           fmt: str | None = None, description: str | None = None) -> Schema:
    schema: Schema = {"type": "string"}
    if min_length is not None:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    if pattern is not None:
        schema["pattern"] = pattern
    if enum is not None:
        schema["enum"] = enum
    if fmt is not None:
        schema["format"] = fmt
    if description:
        schema["description"] = description
    return schema


def uuid_string(description: str | None = None) -> Schema:
    return string(fmt="uuid", pattern=UUID_PATTERN, description=description)


def integer(minimum: int | None = None, maximum: int | None = None,
            description: str | None = None) -> Schema:
    schema: Schema = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    if description:
        schema["description"] = description
    return schema


def boolean() -> Schema:
    return {"type": "boolean"}


def array(items: Schema, min_items: int | None = None, max_items: int | None = None,
          unique: bool = False) -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if min_items is not None:
        schema["minItems"] = min_items
    if max_items is not None:
        schema["maxItems"] = max_items
    if unique:
        schema["uniqueItems"] = True
    return schema


def obj(required: dict[str, Schema] | None = None, optional: dict[str, Schema] | None = None,
        *, closed: bool = True, description: str | None = None) -> Schema:
    """An object; ``closed`` objects reject unknown fields (typos are errors, not no-ops)."""
    required = required or {}
    schema: Schema = {"type": "object", "properties": {**required, **(optional or {})}}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def named(name: str, schema: Schema) -> Schema:
    """``schema`` as the named component ``name`` of the OpenAPI document (``$ref``-ed there)."""
    return {**schema, "title": name}


def nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


def map_of(values: Schema) -> Schema:
    return {"type": "object", "additionalProperties": values}


def validate(schema: Schema, value: Any, path: str = "") -> dict[str, str]:
    """Field errors of ``value`` against ``schema`` (empty when valid)."""
    errors: dict[str, str] = {}
    _check(schema, value, path, errors)
    return errors


def _type_ok(kind: str, value: Any) -> bool:
    match kind:
        case "string":
            return isinstance(value, str)
        case "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "boolean":
            return isinstance(value, bool)
        case "array":
            return isinstance(value, list)
        case "object":
            return isinstance(value, dict)
        case "null":
            return value is None
    return False


def _check(schema: Schema, value: Any, path: str, errors: dict[str, str]) -> None:
    where = path or "body"
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if not any(_type_ok(k, value) for k in kinds):
        errors[where] = f"must be of type {' or '.join(kinds)}"
        return
    if value is None:
        return
    if isinstance(value, str):
        _check_string(schema, value, where, errors)
    elif isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors[where] = f"must be at least {schema['minimum']}"
        elif "maximum" in schema and value > schema["maximum"]:
            errors[where] = f"must be at most {schema['maximum']}"
    elif isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors[where] = f"must have at least {schema['minItems']} items"
        elif "maxItems" in schema and len(value) > schema["maxItems"]:
            errors[where] = f"must have at most {schema['maxItems']} items"
        elif schema.get("uniqueItems") and len({repr(v) for v in value}) != len(value):
            errors[where] = "must not contain duplicates"
        else:
            for i, item in enumerate(value):
                _check(schema["items"], item, f"{path}[{i}]" if path else f"[{i}]", errors)
    elif isinstance(value, dict):
        props: dict[str, Schema] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors[_join(path, name)] = "is required"
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                _check(props[name], item, _join(path, name), errors)
            elif extra is False:
                errors[_join(path, str(name))] = "is not a known field"
            elif isinstance(extra, dict):
                _check(extra, item, _join(path, str(name)), errors)


def _check_string(schema: Schema, value: str, where: str, errors: dict[str, str]) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        errors[where] = "must be valid Unicode text"
        return
    if "\x00" in value:
        errors[where] = "must not contain NUL characters"
    elif "minLength" in schema and len(value) < schema["minLength"]:
        errors[where] = f"must be at least {schema['minLength']} characters"
    elif "maxLength" in schema and len(value) > schema["maxLength"]:
        errors[where] = f"must be at most {schema['maxLength']} characters"
    elif "enum" in schema and value not in schema["enum"]:
        errors[where] = f"must be one of {', '.join(schema['enum'])}"
    elif schema.get("format") == "uuid" and not is_uuid(value):
        errors[where] = "must be a UUID"
    elif "pattern" in schema and not re.search(schema["pattern"], value):
        errors[where] = f"must match {schema['pattern']}"


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return bool(re.fullmatch(UUID_PATTERN, value))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
