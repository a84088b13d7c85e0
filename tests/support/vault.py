"""A minimal stand-in for HashiCorp Vault's KV v2 read endpoint (no Vault server is
installable from this machine's package registries). Run: python -m tests.support.vault
PORT TOKEN; it serves GET /v1/<mount>/data/<path> for the secrets in VAULT_TEST_DATA
(JSON: {"path": {"field": "value"}})."""

from __future__ import annotations

import json
import os
import sys

from aiohttp import web


def make_app(token: str, data: dict[str, dict[str, str]]) -> web.Application:
    async def read(request: web.Request) -> web.Response:
        if request.headers.get("X-Vault-Token") != token:
            return web.json_response({"errors": ["permission denied"]}, status=403)
        path = request.match_info["path"]
        if path not in data:
            return web.json_response({"errors": []}, status=404)
        return web.json_response({"data": {"data": data[path], "metadata": {"version": 1}}})

    app = web.Application()
    app.add_routes([web.get("/v1/{mount}/data/{path:.+}", read)])
    return app


if __name__ == "__main__":
    web.run_app(
        make_app(sys.argv[2], json.loads(os.environ["VAULT_TEST_DATA"])),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        print=None,
        access_log=None,
    )
