"""The CLI's client for the admin API on the Unix socket (stdlib only, so the CLI starts fast)."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from appyard.errors import UserError
from appyard.home import Home


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class AdminClient:
    def __init__(self, home: Home, timeout: float | None = 600) -> None:
        self.home = home
        self.timeout = timeout

    def _open(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> http.client.HTTPResponse:
        if query:
            path += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        conn = _UnixConnection(str(self.home.socket_path), self.timeout)
        payload = json.dumps(body).encode() if body is not None else None
        try:
            conn.request(
                method,
                path,
                body=payload,
                headers={"Content-Type": "application/json"} if payload else {},
            )
            return conn.getresponse()
        except (FileNotFoundError, ConnectionRefusedError):
            raise UserError(
                f"appyard server is not running (no socket at "
                f"{self.home.socket_path}); start it with: appyard server start"
            ) from None
        except PermissionError:
            raise UserError(
                f"permission denied on {self.home.socket_path}; run as the user "
                "that started the server"
            ) from None

    def call(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        resp = self._open(method, path, query, body)
        raw = resp.read()
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise UserError(f"unexpected answer from the server: HTTP {resp.status}") from None
        if resp.status >= 400:
            raise UserError(data.get("error") or f"HTTP {resp.status}")
        return data

    def stream_lines(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """NDJSON records as the server sends them (progress, then the result)."""
        resp = self._open(method, path, query, body)
        if resp.status >= 400:
            data = json.loads(resp.read() or b"{}")
            raise UserError(data.get("error") or f"HTTP {resp.status}")
        for line in resp:
            if line.strip():
                yield json.loads(line)

    def stream_raw(self, path: str, query: dict[str, Any]) -> Iterator[bytes]:
        resp = self._open("GET", path, query)
        if resp.status >= 400:
            data = json.loads(resp.read() or b"{}")
            raise UserError(data.get("error") or f"HTTP {resp.status}")
        while chunk := resp.read1(65536):
            yield chunk
