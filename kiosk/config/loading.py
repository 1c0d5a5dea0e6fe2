"""Reading a config: every schema problem of a TOML text at once, each naming the key and the line.

``kiosk.toml:12: [signals] grean_led: unknown key``: problems are gathered, not
raised one by one, so an operator fixes the whole file in one go. The rules
between keys (a GPIO pin used twice, an unknown code format) are checked here too.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from typing import Any

from kiosk.config.schema import (CONFIG_MAX_BYTES, ERROR, SECTIONS, WARNING, Config, ConfigError, Problem,
                                 SignalsConfig, is_required)
from kiosk.secrets import FileRefused, read_capped
from kiosk.wire import formats

def find_line(text: str, section: str | None, key: str | None) -> int | None:
    """Best-effort line of ``[section] key`` in the TOML text (tomllib keeps no positions)."""
    lines = text.splitlines()
    start = None
    for i, line in enumerate(lines):
        if re.match(rf"^\s*\[\s*{re.escape(section)}\s*\]", line):
            start = i
            break
    if start is None:
        return None
    if key is None:
        return start + 1
    for j in range(start + 1, len(lines)):
        if re.match(r"^\s*\[", lines[j]):
            break
        if re.match(rf"^\s*\"?{re.escape(key)}\"?\s*=", lines[j]):
            return j + 1
    return start + 1


def _type_name(t: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(t, str(t))


def _check_value(value: Any, ftype: Any, meta: dict, key: str) -> Any:
    origin = typing.get_origin(ftype)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ftype) if a is not type(None)]
        if value is None:
            return None
        return _check_value(value, args[0], meta, key)
    if origin is list:
        (item,) = typing.get_args(ftype)
        if not isinstance(value, list):
            raise ConfigError(f"expected a list of {_type_name(item)}s, got {type(value).__name__}")
        items = [_check_value(v, item, {}, key) for v in value]
        if "items" in meta:
            for v in items:
                if v not in meta["items"]:
                    raise ConfigError(f"unknown name {v!r} (known: {', '.join(meta['items'])})")
        return items
    if ftype is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false, got {value!r}")
    elif ftype is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected an integer, got {value!r}")
    elif ftype is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"expected a number, got {value!r}")
        value = float(value)
    elif ftype is str:
        if not isinstance(value, str):
            raise ConfigError(f"expected a string, got {value!r}")
        if "\0" in value:
            raise ConfigError("must not contain a NUL character")
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"must be one of {', '.join(meta['choices'])}, got {value!r}")
    if "pattern" in meta and not re.match(meta["pattern"], value):
        raise ConfigError(f"{value!r} is not in the expected form")
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"must be at least {meta['min']}, got {value!r}")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(f"must be at most {meta['max']}, got {value!r}")
    if meta.get("pin") and value is not None and not 0 <= value <= 27:
        raise ConfigError(f"BCM GPIO pin must be 0..27, got {value!r}")
    return value


class _Collector:
    """Gathers every problem of one config text, each with its key, file and line."""

    def __init__(self, text: str, path: str):
        self.text, self.path = text, path
        self.problems: list[Problem] = []

    def add(self, message: str, section: str | None = None, key: str | None = None, level: str = ERROR) -> None:
        name = "" if section is None else f"[{section}] {key}" if key else f"[{section}]"
        line = find_line(self.text, section, key) if section else None
        self.problems.append(Problem(message, name, line, self.path, level))


def _build_section(name: str, cls: type, data: Any, out: _Collector) -> Any:
    """The section's dataclass; a bad value is reported and its default used, so checking goes on."""
    if not isinstance(data, dict):
        out.add("must be a table", name)
        data = {}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        if key not in fields:
            out.add(f"unknown key (known: {', '.join(fields)})", name, key)
            continue
        try:
            values[key] = _check_value(value, hints[key], dict(fields[key].metadata), key)
        except ConfigError as exc:
            out.add(exc.problems[0].message, name, key)
    for fname, f in fields.items():
        if fname not in values and is_required(f):
            out.add("required value missing", name, fname)
            values[fname] = ""
    return cls(**values)


SCREEN_MIN, SCREEN_MAX = (160, 120), 10000


def screen_size(text: str) -> tuple[int, int] | None:
    """``WxH`` as numbers; None for ``auto``."""
    if text == "auto":
        return None
    w, _, h = text.partition("x")
    return int(w), int(h)


def _cross_checks(cfg: Config, out: _Collector) -> None:
    """Rules that span keys or need more than a type: one GPIO pin per device, known formats, sizes."""
    seen: dict[int, str] = {}
    for f in dataclasses.fields(SignalsConfig):
        pin = getattr(cfg.signals, f.name)
        if f.metadata.get("pin") and pin is not None:
            if pin in seen:
                out.add(f"GPIO {pin} is already used by [signals] {seen[pin]}", "signals", f.name)
            else:
                seen[pin] = f.name
    for fmt in cfg.policy.accept_formats:
        if fmt not in formats.FORMAT_NAMES or fmt == formats.UNKNOWN:
            out.add(f"unknown format {fmt!r} (known: {', '.join(formats.FORMAT_NAMES[:-1])})", "policy",
                    "accept_formats")
    size = screen_size(cfg.screen.size) if re.match(r"^(auto|\d+x\d+)$", cfg.screen.size) else None
    if size is not None:
        (w, h), (min_w, min_h) = size, SCREEN_MIN
        if not (min(w, h) >= min(min_w, min_h) and max(w, h) >= max(min_w, min_h) and max(w, h) <= SCREEN_MAX):
            out.add(f"{cfg.screen.size!r} is not a usable screen size (at least {min_w}x{min_h} or {min_h}x{min_w}, "
                    f"at most {SCREEN_MAX} a side)", "screen", "size")
    if cfg.ledger.visit_log_fields and not cfg.ledger.visit_log:
        out.add("has no effect while [ledger] visit_log = false", "ledger", "visit_log_fields", level=WARNING)


def collect(text: str, path: str = "<config>") -> tuple[Config, list[Problem]]:
    """Every schema problem of a TOML text at once, and the config built from the valid values.

    Bad values are replaced by their defaults in the returned config (missing
    required strings by ""), so the checks that follow can still look at the
    rest; callers must treat a config with errors as invalid.
    """
    out = _Collector(text, path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        out.problems.append(Problem(f"not valid TOML: {exc}", "", int(m.group(1)) if m else None, path))
        data = None
    sections: dict[str, Any] = {}
    if data is not None:
        for name, value in data.items():
            if name not in SECTIONS:
                out.add(f"unknown section (known: {', '.join(SECTIONS)})", name)
                continue
            sections[name] = _build_section(name, SECTIONS[name], value, out)
        for name in ("device", "venue"):
            if name not in sections:
                out.problems.append(Problem("required section missing", f"[{name}]", None, path))
    for name in ("device", "venue"):
        if name not in sections:
            sections[name] = SECTIONS[name](**{f.name: "" for f in dataclasses.fields(SECTIONS[name]) if is_required(f)})
    cfg = Config(**sections, source_path=str(path))
    if data is not None:
        _cross_checks(cfg, out)
    return cfg, out.problems


def parse(text: str, path: str = "<config>") -> Config:
    """Validate TOML text into a :class:`Config`, or raise :class:`ConfigError` (holding every error).

    This is the schema only (types, ranges, known keys); what the config points
    at (files, keys, devices, the broker URL) is checked by :mod:`kiosk.config.preflight`.
    """
    cfg, problems = collect(text, path)
    if any(p.level == ERROR for p in problems):
        raise ConfigError.of(problems)
    return cfg


def read_text(path: str | os.PathLike) -> str:
    """A config file's text: a regular UTF-8 file of at most 1 MiB, else :class:`ConfigError`."""
    try:
        data = read_capped(path, CONFIG_MAX_BYTES)
    except FileRefused as exc:
        raise ConfigError(f"cannot read config file: {str(exc)[len(str(path)) + 2:] or exc}", path=str(path)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("config file is not UTF-8 text", path=str(path)) from None


def load(path: str | os.PathLike) -> Config:
    """Read and validate a config file (the schema; see :mod:`kiosk.config.preflight` for the rest)."""
    return parse(read_text(path), str(path))
