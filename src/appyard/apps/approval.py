"""What an app version asks for, and whether it was approved.

Approval covers the spec, the container options and the secret references in params
and build args. `--approve` at create (or `appyard app approve`) grants what the
current versions ask for; a later version that asks for more is not served, and
cannot be promoted, until it is approved too.
"""

from __future__ import annotations

from appyard.apps.model import AppVersion
from appyard.config import ContainerConfig
from appyard.errors import UserError
from appyard.secrets.refs import refs_in

Approval = dict[str, list[str]]
_KINDS = ("specs", "copts", "secrets")


def needs(version: AppVersion) -> dict[str, set[str]]:
    secrets = {
        str(ref)
        for value in (*version.params.values(), *version.build_args.values())
        for ref in refs_in(value)
    }
    return {"specs": {version.spec}, "copts": set(version.container_opts), "secrets": secrets}


def missing(version: AppVersion, approval: Approval | None) -> list[str]:
    """What `version` asks for beyond `approval`, as `kind name` strings (empty: approved)."""
    granted = approval or {}
    return [
        f"{kind[:-1]} {item}"
        for kind, items in needs(version).items()
        for item in sorted(items)
        if approval is None or item not in granted.get(kind, [])
    ]


def grant(approval: Approval | None, *versions: AppVersion) -> Approval:
    out = {kind: set((approval or {}).get(kind, [])) for kind in _KINDS}
    for version in versions:
        for kind, items in needs(version).items():
            out[kind] |= items
    return {kind: sorted(items) for kind, items in out.items()}


def check_options(options: dict[str, str | None], cfg: ContainerConfig) -> None:
    """Refuse container options the server config forbids (or does not allow)."""
    for name in options:
        if name in cfg.denied_options:
            raise UserError(
                f"container option {name} is forbidden by the server config "
                "([container] denied_options)"
            )
        if cfg.allowed_options is not None and name not in cfg.allowed_options:
            raise UserError(
                f"container option {name} is not in the server's allowed "
                "options ([container] allowed_options)"
            )
