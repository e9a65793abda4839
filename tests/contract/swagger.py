"""Check JSON bodies against the reference horde's live Swagger 2.0 spec.

For API tests: assert that what our server sends has the shape the reference documents.

    from tests.contract.swagger import check_body, check_response, requires_swagger

    @requires_swagger
    async def test_status(client):
        r = await client.get(f"/api/v2/generate/status/{rid}")
        assert check_response("GET", "/api/v2/generate/status/x", r.status_code, r.json()) == []
        assert check_body("RequestStatusStable", r.json()) == []
        assert check_body("WorkerDetails[]", workers_json) == []   # "[]": a list of that definition

Each returns a list of human-readable problems (empty = fine), each prefixed with the JSON path
(`generations[0].seed: expected string, got integer`). What counts as a problem:
* a key the definition lacks (after resolving `$ref` and merging `allOf`); definitions with a
  wildcard `"*"` property accept any key and check its value against the wildcard's
  `additionalProperties`; a bare `{"type": "object"}` (a flask-restx Raw field) accepts anything;
* a value of the wrong JSON type: `integer` must be a JSON integer (not `5.0`, not a bool),
  `number` any JSON number, and so on, recursively through arrays and nested objects;
* a value outside the definition's `enum` (pass `enums=False` to skip, e.g. for `rc`, whose swagger
  enum predates several live rcs);
* a required key that is missing or null. Other keys may be null: the reference's marshalling
  sends null for every absent field.
Limits (min/max, lengths) are not checked: the reference does not enforce them on its responses.

The spec is read from `../shared/api/aihorde-v2.swagger.json` beside the repository; tests that need
it should use `requires_swagger` (they are skipped when the file is absent).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

# beside the repository; a worktree may sit one level deeper than the main checkout
_SHARED = next(
    (p / "shared" for p in Path(__file__).resolve().parents[3:] if (p / "shared" / "api").is_dir()),
    Path(__file__).resolve().parents[3] / "shared",
)
SWAGGER_PATH = _SHARED / "api" / "aihorde-v2.swagger.json"

requires_swagger = pytest.mark.skipif(not SWAGGER_PATH.is_file(), reason=f"{SWAGGER_PATH} is absent")

Schema = dict[str, Any]

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


@cache
def spec() -> dict[str, Any]:
    """The parsed swagger document (skips the calling test when the file is absent)."""
    if not SWAGGER_PATH.is_file():
        pytest.skip(f"{SWAGGER_PATH} is absent")
    result: dict[str, Any] = json.loads(SWAGGER_PATH.read_text(encoding="utf-8"))
    return result


def definition(name: str) -> Schema:
    """The raw swagger definition `name` (KeyError if the spec has none)."""
    result: Schema = spec()["definitions"][name]
    return result


def flatten(schema: Schema) -> Schema:
    """Resolve a top-level `$ref` and merge an `allOf` chain into one object schema.

    The result has `properties` and `required` (possibly empty) and keeps `additionalProperties`.
    Nested property schemas are left as they are (still possibly `$ref`s).
    """
    schema = _deref(schema)
    if "allOf" not in schema:
        return {"properties": {}, "required": [], **schema}
    merged: Schema = {"type": "object", "properties": {}, "required": []}
    for part in schema["allOf"]:
        flat = flatten(part)
        merged["properties"].update(flat.get("properties", {}))
        merged["required"] += [r for r in flat.get("required", []) if r not in merged["required"]]
        if "additionalProperties" in flat:
            merged["additionalProperties"] = flat["additionalProperties"]
    return merged


def check_body(definition_name: str, body: object, *, enums: bool = True) -> list[str]:
    """Problems of `body` against the swagger definition (`"Name[]"` for a list of them)."""
    if definition_name.endswith("[]"):
        schema: Schema = {"type": "array", "items": {"$ref": f"#/definitions/{definition_name[:-2]}"}}
    else:
        definition(definition_name)  # fail loudly on a misspelt name
        schema = {"$ref": f"#/definitions/{definition_name}"}
    return check_schema(schema, body, enums=enums)


def check_response(method: str, path: str, status: int, body: object, *, enums: bool = True) -> list[str]:
    """Problems of a response body against what the swagger documents for that route and status.

    `path` may be concrete (`/api/v2/workers/4f0c...`) or a template (`/v2/workers/{worker_id}`).
    """
    template = _match_path(path)
    if template is None:
        return [f"{method} {path}: no such path in the swagger"]
    operation = spec()["paths"][template].get(method.lower())
    if operation is None:
        return [f"{method} {template}: no such method in the swagger"]
    response = operation.get("responses", {}).get(str(status))
    if response is None:
        return [f"{method} {template}: status {status} is not documented"]
    if "schema" not in response:
        return []
    return check_schema(response["schema"], body, enums=enums)


def check_schema(schema: Schema, value: object, *, enums: bool = True, path: str = "$") -> list[str]:
    """Problems of `value` against an arbitrary swagger schema (the engine of the functions above)."""
    problems: list[str] = []
    _check(schema, value, path, problems, enums)
    return problems


def _deref(schema: Schema) -> Schema:
    while "$ref" in schema:
        schema = definition(schema["$ref"].rsplit("/", 1)[-1])
    return schema


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_raw(schema: Schema) -> bool:
    """A flask-restx Raw field: `{"type": "object"}` and nothing more; any value goes."""
    return schema.get("type") == "object" and not (
        {"properties", "additionalProperties", "allOf"} & set(schema)
    )


def _check(schema: Schema, value: object, path: str, problems: list[str], enums: bool) -> None:
    schema = _deref(schema)
    if value is None or _is_raw(schema):
        return
    if "allOf" in schema or "properties" in schema:
        _check_object(flatten(schema), value, path, problems, enums)
        return
    expected = schema.get("type")
    if expected is None:
        return
    if not _has_type(value, expected):
        problems.append(f"{path}: expected {expected}, got {_type_name(value)}")
        return
    if enums and "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if expected == "array" and "items" in schema:
        assert isinstance(value, list)
        for i, item in enumerate(value):
            _check(schema["items"], item, f"{path}[{i}]", problems, enums)
    elif expected == "object" and isinstance(schema.get("additionalProperties"), dict):
        assert isinstance(value, dict)
        for key, item in value.items():
            _check(schema["additionalProperties"], item, f"{path}.{key}", problems, enums)


def _has_type(value: object, expected: str) -> bool:
    if isinstance(value, bool):
        return expected == "boolean"
    return isinstance(value, _JSON_TYPES.get(expected, (object,)))


def _check_object(schema: Schema, value: object, path: str, problems: list[str], enums: bool) -> None:
    if not isinstance(value, dict):
        problems.append(f"{path}: expected object, got {_type_name(value)}")
        return
    properties: dict[str, Schema] = schema.get("properties", {})
    wildcard = properties.get("*")
    for key, item in value.items():
        if key in properties and key != "*":
            _check(properties[key], item, f"{path}.{key}", problems, enums)
        elif wildcard is not None:
            _check(wildcard.get("additionalProperties", {}), item, f"{path}.{key}", problems, enums)
        else:
            problems.append(f"{path}: unexpected key {key!r}")
    for key in schema.get("required", []):
        if value.get(key) is None:
            problems.append(f"{path}: required key {key!r} is {'null' if key in value else 'missing'}")


def _match_path(path: str) -> str | None:
    path = path.split("?", 1)[0].rstrip("/")
    base = spec().get("basePath", "")
    if base and path.startswith(base + "/"):
        path = path[len(base) :]
    paths: dict[str, Any] = spec()["paths"]
    if path in paths:
        return path
    for template in sorted(paths, key=lambda t: t.count("{")):  # literal segments win
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return template
    return None
