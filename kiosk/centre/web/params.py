"""Typed route parameters: each one parsed once, and a bad one answered 400 with a sentence naming it.

A route declares its parameters in the route table (:mod:`kiosk.centre.web.routes`); the same
declaration parses the request and describes the parameter in ``/api/v1/openapi.json``.
Every text is refused when it holds a NUL or a control character (PostgreSQL cannot store a NUL
in text, and no district, ward or venue id has one) or is longer than ``max_length``.
"""

from __future__ import annotations

from dataclasses import dataclass


class BadParameter(ValueError):
    """A parameter the route cannot use: 400 with ``message`` (which names it)."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name
        self.message = message


@dataclass(frozen=True)
class Param:
    name: str
    where: str = "query"             # "query" or "path"
    kind: str = "string"             # "string", "integer", "enum" or "date" (YYYY-MM-DD)
    description: str = ""
    default: object = None
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    max_length: int = 200

    @property
    def required(self) -> bool:
        return self.where == "path"

    def parse(self, raw: str | None):
        """The parameter's value from the request's text (None: absent), or :class:`BadParameter`."""
        if raw is None or (raw == "" and self.where == "query"):
            return self.default
        if len(raw) > self.max_length:
            raise BadParameter(self.name, f"{self.name}: at most {self.max_length} characters")
        if any(ord(c) < 32 or ord(c) == 127 for c in raw):
            raise BadParameter(self.name, f"{self.name}: no NUL or other control characters")
        if self.kind == "integer":
            text = raw.strip()
            if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 12:
                raise BadParameter(self.name, f"{self.name}: a whole number from {self.minimum} to {self.maximum} "
                                              f"(got {raw[:40]!r})")
            value = int(text)
            if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
                raise BadParameter(self.name, f"{self.name}: a whole number from {self.minimum} to {self.maximum} "
                                              f"(got {value})")
            return value
        if self.kind == "date":
            from datetime import date

            try:
                return date.fromisoformat(raw.strip()).isoformat() if len(raw.strip()) == 10 else _no_date(self.name, raw)
            except ValueError:
                _no_date(self.name, raw)
        if self.kind == "enum" and raw not in self.choices:
            raise BadParameter(self.name, f"{self.name}: one of {', '.join(self.choices)} (got {raw[:40]!r})")
        return raw

    def schema(self) -> dict:
        """The parameter's JSON Schema (OpenAPI)."""
        if self.kind == "integer":
            s = {"type": "integer"}
            if self.minimum is not None:
                s["minimum"] = self.minimum
            if self.maximum is not None:
                s["maximum"] = self.maximum
        elif self.kind == "enum":
            s = {"type": "string", "enum": list(self.choices)}
        elif self.kind == "date":
            s = {"type": "string", "format": "date"}
        else:
            s = {"type": "string", "maxLength": self.max_length, "pattern": "^[^\\x00-\\x1f\\x7f]*$"}
            if self.where == "path":
                s["minLength"] = 1
        if self.default is not None:
            s["default"] = self.default
        return s

    def openapi(self) -> dict:
        return {"name": self.name, "in": self.where, "required": self.required, "description": self.description,
                "schema": self.schema()}


def _no_date(name: str, raw: str):
    raise BadParameter(name, f"{name}: a day as YYYY-MM-DD (got {raw[:20]!r})")
