"""Resolve the secret references in a set of values, at container start or image build."""

from __future__ import annotations

from appyard.secrets.providers import Provider, SecretError
from appyard.secrets.refs import SecretRef, has_refs, parse


class SecretResolver:
    def __init__(self, providers: dict[str, Provider], default: str) -> None:
        self.providers = providers
        self.default = default

    async def resolve(self, values: dict[str, str]) -> dict[str, str]:
        """The same mapping with every `{{secret ...}}` replaced by its value."""
        out, cache = {}, {}
        for name, value in values.items():
            if not has_refs(value):
                out[name] = value
                continue
            pieces = []
            for part in parse(value):
                if isinstance(part, str):
                    pieces.append(part)
                    continue
                if part not in cache:
                    cache[part] = await self._fetch(part)
                pieces.append(cache[part])
            out[name] = "".join(pieces)
        return out

    async def _fetch(self, ref: SecretRef) -> str:
        provider_name = ref.provider or self.default
        provider = self.providers.get(provider_name)
        if provider is None:
            known = ", ".join(sorted(self.providers))
            raise SecretError(
                f"secret provider {provider_name!r} (for key {ref.key!r}) is "
                f"not configured; known providers: {known}"
            )
        return await provider.get(ref.key)


def uses_secrets(values: dict[str, str]) -> bool:
    return any(has_refs(v) for v in values.values())
