"""Test app for container tests: stdlib only (the base image has no extra packages).

/            "hello <GREETING>" (GREETING env, default world)
/env         the environment as JSON
/health      ok
/ws          a minimal WebSocket echo (text frames), enough to hold a stream open
/slow?s=N    answers after N seconds
/file?p=X    the content of file X in the container
"""

import base64
import hashlib
import json
import os
import socketserver
import struct
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        print("request:", fmt % args, flush=True)

    def _send(self, body: bytes, ctype: str = "text/plain", status: int = 200):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        prefix = os.environ.get("CL_APP_PATH", "")
        if prefix and path.startswith(prefix):
            path = path[len(prefix) :] or "/"
        if path == "/env":
            self._send(json.dumps(dict(os.environ)).encode(), "application/json")
        elif path == "/file":
            with open(self.path.split("p=", 1)[1], "rb") as f:
                self._send(f.read())
        elif path == "/health":
            self._send(b"ok")
        elif path == "/ws":
            self._websocket()
        elif path == "/slow":
            time.sleep(float(self.path.split("s=")[-1]))
            self._send(b"slow done")
        else:
            self._send(f"hello {os.environ.get('GREETING', 'world')}".encode())

    def _websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack(">H", self.rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 8:
                self.wfile.write(b"\x88\x00")
                return
            if opcode == 1:
                reply = b"echo:" + data
                self.wfile.write(bytes([0x81, len(reply)]) + reply)
                self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


if __name__ == "__main__":
    socketserver.TCPServer.allow_reuse_address = True
    port = int(os.environ.get("PORT", "8000"))
    print(f"listening on {port}", flush=True)
    Server(("0.0.0.0", port), Handler).serve_forever()
