"""Every contract model against its swagger definition: fields, JSON types, limits, required, defaults."""

from __future__ import annotations

from typing import Any

import pytest

from horde.contract import HordeModel

from ._registry import (
    DEFAULT_DIFFERENCES,
    EXTRA_REQUIRED,
    FIELD_DIFFERENCES,
    INPUT_MODELS,
    TYPE_DIFFERENCES,
    swagger_models,
)
from .swagger import check_body, definition, flatten, requires_swagger, spec

pytestmark = requires_swagger

MODELS = swagger_models()
CONSTRAINTS = ("minimum", "maximum", "minLength", "maxLength", "multipleOf", "uniqueItems")


def _swagger_props(name: str) -> tuple[dict[str, Any], set[str]]:
    flat = flatten(definition(name))
    return flat["properties"], set(flat["required"])


def _our_schema(model: type[HordeModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = model.model_json_schema(mode="serialization", by_alias=True)
    return schema["properties"], schema.get("$defs", {})


def _is_wildcard(name: str) -> bool:
    return set(flatten(definition(name))["properties"]) == {"*"}


def _norm_swagger(prop: dict[str, Any]) -> dict[str, Any]:
    """Reduce a swagger property to {type, ref, enum, format, items, constraints...}."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return {"type": "object"} if _is_wildcard(name) else {"ref": name}
    out = {k: prop[k] for k in ("type", "enum", "format", *CONSTRAINTS) if k in prop}
    if out.get("uniqueItems") is False:
        del out["uniqueItems"]
    if "items" in prop:
        out["items"] = _norm_swagger(prop["items"])
    return out


def _norm_ours(prop: dict[str, Any]) -> dict[str, Any]:
    """Reduce one of our JSON-schema properties the same way (Optional unwrapped)."""
    if "anyOf" in prop:
        branches = [b for b in prop["anyOf"] if b.get("type") != "null"]
        if len(branches) != 1:
            return {"type": "union"}
        prop = {**{k: v for k, v in prop.items() if k != "anyOf"}, **branches[0]}
    if "$ref" in prop:
        return {"ref": prop["$ref"].rsplit("/", 1)[-1]}
    out = {k: prop[k] for k in ("type", "enum", "format", *CONSTRAINTS) if k in prop}
    if "const" in prop:
        out["enum"] = [prop["const"]]
    if out.get("type") == "object" or ("additionalProperties" in prop and "type" not in out):
        return {"type": "object"}
    if "items" in prop:
        out["items"] = _norm_ours(prop["items"])
    return out


def _comparable(d: dict[str, Any]) -> dict[str, Any]:
    out = dict(d)
    if "enum" in out:
        out["enum"] = sorted(out["enum"])
    if "items" in out:
        out["items"] = _comparable(out["items"])
    return out


def test_every_model_names_a_swagger_definition() -> None:
    assert set(MODELS) <= set(spec()["definitions"])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fields_match_the_definition(name: str) -> None:
    theirs, _ = _swagger_props(name)
    ours, _ = _our_schema(MODELS[name])
    known = {field for (model, field) in FIELD_DIFFERENCES if model == name}
    assert set(ours) ^ (set(theirs) - {"*"}) == known


@pytest.mark.parametrize("name", sorted(MODELS))
def test_json_types_and_limits_match(name: str) -> None:
    theirs, _ = _swagger_props(name)
    ours, _ = _our_schema(MODELS[name])
    mismatches = {}
    for field in sorted(set(theirs) & set(ours)):
        if (name, field) in TYPE_DIFFERENCES:
            continue
        expected = _comparable(_norm_swagger(theirs[field]))
        actual = _comparable(_norm_ours(ours[field]))
        if expected != actual:
            mismatches[field] = {"swagger": expected, "ours": actual}
    assert mismatches == {}


def test_listed_type_differences_are_real() -> None:
    for model, field in TYPE_DIFFERENCES:
        theirs, _ = _swagger_props(model)
        ours, _ = _our_schema(MODELS[model])
        assert _norm_swagger(theirs[field]) != _norm_ours(ours[field]), (model, field)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_swagger_required_fields_are_always_sent(name: str) -> None:
    _, required = _swagger_props(name)
    fields = {f.alias or n: f for n, f in MODELS[name].model_fields.items()}
    for key in required - {k for (m, k) in FIELD_DIFFERENCES if m == name}:
        info = fields[key]
        assert info.is_required() or info.get_default(call_default_factory=True) is not None, key
        if name in INPUT_MODELS:
            assert info.is_required(), key


@pytest.mark.parametrize("name", sorted(INPUT_MODELS))
def test_inputs_require_no_more_than_the_swagger(name: str) -> None:
    _, required = _swagger_props(name)
    ours = {f.alias or n for n, f in MODELS[name].model_fields.items() if f.is_required()}
    assert ours - required == {k for (m, k) in EXTRA_REQUIRED if m == name}


@pytest.mark.parametrize("name", sorted(INPUT_MODELS))
def test_input_defaults_are_the_swaggers_unless_listed(name: str) -> None:
    theirs, _ = _swagger_props(name)
    for n, info in MODELS[name].model_fields.items():
        key = info.alias or n
        if key not in theirs or "default" not in theirs[key]:
            continue
        ours = info.get_default(call_default_factory=True)
        if (name, key) in DEFAULT_DIFFERENCES:
            assert (theirs[key]["default"], ours) == DEFAULT_DIFFERENCES[(name, key)], key
        else:
            assert ours == theirs[key]["default"], key


def _example(schema: dict[str, Any]) -> Any:
    """A value for a swagger schema: its example, else its first enum value or default, else made up."""
    if "$ref" in schema or "allOf" in schema or "properties" in schema:
        props = flatten(schema)["properties"]
        if set(props) == {"*"}:
            return {"some_key": _example(props["*"].get("additionalProperties", {}))}
        return {k: _example(v) for k, v in props.items()}
    if "example" in schema:
        return schema["example"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    return _made_up(schema)


def _made_up(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2024-01-01T00:00:00Z"
        if schema.get("minLength") == 36:
            return "00000000-0000-0000-0000-000000000000"
        return "x" * max(schema.get("minLength", 1), 5)
    if kind == "integer":
        return schema.get("minimum", schema.get("multipleOf", 1))
    if kind == "number":
        return schema.get("minimum", 1.0)
    if kind == "boolean":
        return True
    if kind == "array":
        return [_example(schema.get("items", {}))]
    return {}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_swagger_example_validates_and_round_trips(name: str) -> None:
    body = _example({"$ref": f"#/definitions/{name}"})
    parsed = MODELS[name].model_validate(body)
    dumped = parsed.model_dump(mode="json")
    known = [f for (m, f) in FIELD_DIFFERENCES.keys() | TYPE_DIFFERENCES.keys() if m == name]
    problems = check_body(name, dumped)
    assert [p for p in problems if not any(f"'{f}'" in p or f"$.{f}:" in p for f in known)] == []
    theirs, _ = _swagger_props(name)
    for key, value in body.items():
        if not isinstance(value, dict | list) and (name, key) not in FIELD_DIFFERENCES:
            # a string field whose example is a number (FilterPromptSuspicion.suspicion) is sent as text
            as_sent = str(value) if theirs.get(key, {}).get("type") == "string" else value
            assert dumped[key] == as_sent, key
