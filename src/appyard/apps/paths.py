"""App paths (`[domain:]/path`) and the globs that select apps.

An app path is what users type and what the router matches; it must be
unambiguous, so every questionable form is refused with its own message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from appyard.errors import UserError

STAGE_SUFFIX = "_cl_stage"
_RESERVED_SUFFIXES = (STAGE_SUFFIX, "_cl_preview")
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._~@+-]+$")
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


@dataclass(frozen=True, order=True)
class AppPath:
    domain: str
    path: str

    def __str__(self) -> str:
        return f"{self.domain}:{self.path}" if self.domain else self.path

    @property
    def stage(self) -> AppPath:
        """Where the staging instance is served: `/x_cl_stage`, or `domain:/_cl_stage`."""
        if self.path == "/":
            return AppPath(self.domain, "/" + STAGE_SUFFIX)
        return AppPath(self.domain, self.path + STAGE_SUFFIX)


def parse_app_path(raw: str) -> AppPath:
    """Parse and validate `[domain:]/path`; trailing slashes are trimmed."""
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise UserError("app path must not contain control characters")
    if not raw:
        raise UserError("app path is empty; use /path or domain:/path")
    domain, sep, path = raw.rpartition(":")
    if sep and "/" in domain:
        raise UserError(f"app path {raw!r}: ':' may only separate a domain from the path")
    domain = domain.strip().lower()
    if sep and not domain:
        raise UserError(f"app path {raw!r} has an empty domain before ':'")
    if domain and not _DOMAIN_RE.match(domain):
        raise UserError(f"app path {raw!r}: {domain!r} is not a valid domain name")
    return AppPath(domain, _normalize_path(path, raw))


def _normalize_path(path: str, raw: str) -> str:
    if not path.startswith("/"):
        raise UserError(f"app path {raw!r} must start with / (e.g. /myapp or domain:/)")
    path = path.rstrip("/") or "/"
    if "//" in path:
        raise UserError(f"app path {raw!r} must not contain //")
    if path == "/":
        return path
    for seg in path[1:].split("/"):
        if seg in (".", ".."):
            raise UserError(f"app path {raw!r} must not contain . or .. segments")
        if not _SEGMENT_RE.match(seg):
            raise UserError(
                f"app path {raw!r}: segment {seg!r} may only use letters, digits and . _ ~ @ + -"
            )
        if seg.endswith(_RESERVED_SUFFIXES) or seg == "_cl":
            raise UserError(
                f"app path {raw!r}: segment {seg!r} uses a reserved suffix "
                f"({', '.join(_RESERVED_SUFFIXES)})"
            )
    return path


@lru_cache(maxsize=256)
def _glob_regex(glob: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("^" + "".join(out) + "$")


def validate_glob(glob: str) -> str:
    """Check a glob's shape. `all` selects every app; `domain:` may be given as a glob too."""
    glob = glob.strip()
    if not glob:
        raise UserError("app glob is empty; use a path, a glob like /team/* or 'all'")
    if glob == "all":
        return glob
    domain, sep, path = glob.rpartition(":")
    if not path.startswith(("/", "*")):
        raise UserError(f"app glob {glob!r} must start with / (or domain:/), or be 'all'")
    return f"{domain.lower()}{sep}{path}"


def glob_matches(glob: str, app: AppPath) -> bool:
    """`*` matches within a path segment, `**` across segments; no domain part = no-domain apps."""
    if glob == "all":
        return True
    domain_glob, sep, path_glob = glob.rpartition(":")
    if not sep:
        if app.domain:
            return False
    elif not _glob_regex(domain_glob).match(app.domain):
        return False
    path_glob = path_glob.rstrip("/") or "/"
    if path_glob.endswith("/**") and app.path == path_glob[:-3]:
        return True
    return bool(_glob_regex(path_glob).match(app.path))
