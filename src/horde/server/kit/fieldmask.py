"""flask-restx field masks (`X-Fields: {id,kudos_details{accumulated}}`): parse once, apply to a body.

The grammar and the answers follow flask-restx's `Mask`: the outer braces are optional, `{` opens a
nested mask on the field just named, `*` keeps every other field, and a malformed mask is a
`MaskParseError`. A nested mask on a value that is neither an object nor a list of them is a
`MaskError` ("Mask is inconsistent with model"). Fields the mask names that the answer lacks are left
out: this server omits absent fields where the reference sends null (contract/common.py).
"""

from __future__ import annotations

import re
from typing import Any

_TOKENS = re.compile(r"\{|\}|,|[\w:\-*]+")
_OPEN, _CLOSE, _COMMA = "{", "}", ","

Mask = dict[str, "Mask | None"]  # field -> its nested mask (None: the whole value)


class MaskError(ValueError):
    """A mask that does not fit the answer."""


class MaskParseError(MaskError):
    """A mask that is not well formed."""


def parse(text: str) -> Mask:
    """The mask of an `X-Fields` header (MaskParseError when malformed)."""
    text = text.replace("\n", "").strip()
    if text.startswith("{"):
        if not text.endswith("}"):
            raise MaskParseError("Missing closing bracket")
        text = text[1:-1]
    parser = _Parser()
    for token in _TOKENS.findall(text):
        parser.feed(token)
    if parser.stack:
        raise MaskParseError("Missing closing bracket")
    return parser.root


class _Parser:
    def __init__(self) -> None:
        self.root: Mask = {}
        self.fields = self.root
        self.stack: list[Mask] = []
        self.previous: str | None = None

    def feed(self, token: str) -> None:
        if token == _OPEN:
            if self.previous is None or self.previous not in self.fields:
                raise MaskParseError("Unexpected opening bracket")
            nested: Mask = {}
            self.fields[self.previous] = nested
            self.stack.append(self.fields)
            self.fields = nested
        elif token == _CLOSE:
            if not self.stack:
                raise MaskParseError("Unexpected closing bracket")
            self.fields = self.stack.pop()
        elif token == _COMMA:
            if self.previous in (_COMMA, _OPEN, None):
                raise MaskParseError("Unexpected comma")
        else:
            self.fields[token] = None
        self.previous = token


def apply(mask: Mask, data: Any) -> Any:
    """`data` trimmed to the mask: lists masked item by item, objects field by field."""
    if isinstance(data, list):
        return [apply(mask, item) for item in data]
    if not isinstance(data, dict):
        raise MaskError("Mask is inconsistent with model")
    out: dict[str, Any] = {}
    for name, nested in mask.items():
        if name == "*" or name not in data:
            continue
        value = data[name]
        out[name] = value if nested is None or value is None else apply(nested, value)
    if "*" in mask:
        out.update((name, value) for name, value in data.items() if name not in out)
    return out
