"""Parse `{{secret "PROVIDER" "KEY"}}` (or `{{secret "KEY"}}`) references inside a value.

A small hand-written scanner rather than a regex: quoted strings may hold escaped
quotes and braces, and every malformed template is reported with its position.
`{{` always opens a template; single braces are plain text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from appyard.errors import UserError

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


@dataclass(frozen=True, order=True)
class SecretRef:
    provider: str
    key: str

    def __str__(self) -> str:
        if not self.provider:
            return f'{{{{secret "{_quote(self.key)}"}}}}'
        return f'{{{{secret "{_quote(self.provider)}" "{_quote(self.key)}"}}}}'


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


Part = str | SecretRef


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str, at: int | None = None) -> UserError:
        where = self.pos if at is None else at
        return UserError(f"bad secret reference at position {where + 1}: {message}")

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def word(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and (
            self.text[self.pos].isalnum() or self.text[self.pos] == "_"
        ):
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        if self.pos >= len(self.text) or self.text[self.pos] != '"':
            raise self.error('expected a quoted string like "name"')
        start = self.pos
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "\\":
                nxt = self.text[self.pos + 1 : self.pos + 2]
                if nxt not in _ESCAPES:
                    raise self.error(f"unknown escape \\{nxt}")
                out.append(_ESCAPES[nxt])
                self.pos += 2
                continue
            out.append(ch)
            self.pos += 1
        raise self.error("unterminated string", start)

    def template(self) -> SecretRef:
        start = self.pos
        self.pos += 2  # {{
        self.skip_spaces()
        name = self.word()
        if name != "secret":
            raise self.error(
                f"unknown function {name!r}; only secret is supported"
                if name
                else "expected secret after {{",
                start,
            )
        self.skip_spaces()
        provider = self.quoted()
        self.skip_spaces()
        if self.text.startswith("}}", self.pos):  # {{secret "KEY"}}: the default provider
            provider, key = "", provider
            if not key:
                raise self.error("the key must not be empty", start)
            self.pos += 2
            return SecretRef(provider, key)
        key = self.quoted()
        self.skip_spaces()
        if not self.text.startswith("}}", self.pos):
            raise self.error(
                "expected }} to close the reference"
                if self.pos < len(self.text)
                else "unterminated {{",
                start if self.pos >= len(self.text) else None,
            )
        self.pos += 2
        if not provider or not key:
            raise self.error("provider and key must not be empty", start)
        return SecretRef(provider, key)


def parse(value: str) -> list[Part]:
    """Split a value into literal text and secret references; raises UserError if malformed."""
    scanner = _Scanner(value)
    parts: list[Part] = []
    literal_start = 0
    while True:
        found = value.find("{{", scanner.pos)
        if found < 0:
            break
        if found > literal_start:
            parts.append(value[literal_start:found])
        scanner.pos = found
        parts.append(scanner.template())
        literal_start = scanner.pos
    if literal_start < len(value):
        parts.append(value[literal_start:])
    return parts


def refs_in(value: str) -> list[SecretRef]:
    return [p for p in parse(value) if isinstance(p, SecretRef)]


def has_refs(value: str) -> bool:
    return "{{" in value


def render(value: str, resolve: Callable[[SecretRef], str]) -> str:
    """The value with every reference replaced by what `resolve` returns."""
    return "".join(p if isinstance(p, str) else resolve(p) for p in parse(value))
