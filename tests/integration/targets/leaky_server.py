"""A small HTTP service on loopback that keeps every request's body in a module-level log."""

import http.server
import sys

request_log = []


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        request_log.append(("x" * 50_000, self.path))  # expect: suspect
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1])
    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
