"""A tiny metadata service for the guest image test: serves the files of a folder by URL path.

Run inside the test's DHCP namespace: python metadata_server.py ADDRESS PORT FOLDER [HANG].
HANG: comma-separated client addresses that get no answer at all (the connection is held open
for a minute), as from a metadata service that hangs. Prints `ready` once listening and one
line per request (for the test's log)."""

from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    address, port, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]).resolve()
    hang = set(sys.argv[4].split(",")) if len(sys.argv) > 4 else set()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.client_address[0] in hang:
                print(f"{self.client_address[0]} hanging on {self.path}", flush=True)
                time.sleep(60)
                return
            path = (folder / self.path.split("?")[0].lstrip("/")).resolve()
            if not path.is_relative_to(folder) or not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            print(f"{self.client_address[0]} {format % args}", flush=True)

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
