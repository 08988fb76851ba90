"""A tiny metadata service for the guest image test: serves the files of a folder by URL path.

Run inside the test's DHCP namespace: python metadata_server.py ADDRESS PORT FOLDER.
Prints `ready` once listening and one line per request (for the test's log)."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    address, port, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]).resolve()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
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
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
