"""A real HTTP server on 127.0.0.1 speaking the IMDSv2 token protocol (or IMDSv1 only), for preflight tests."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "imds-test-token"


def serve_imds(region: str, zone: str, *, v2: bool = True) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: str = "") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            if not v2 or self.path != "/latest/api/token":
                self._send(403 if not v2 else 404)
                return
            if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                self._send(400)
                return
            self._send(200, TOKEN)

        def do_GET(self) -> None:
            if v2 and self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                self._send(401)
                return
            answers = {
                "/latest/meta-data/placement/region": region,
                "/latest/meta-data/placement/availability-zone": zone,
            }
            if self.path in answers:
                self._send(200, answers[self.path])
            else:
                self._send(404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"
