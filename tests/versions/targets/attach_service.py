"""A stdlib HTTP service on loopback that keeps a record of every request in a module-level list.

Started plainly (not under leakbench); prints its port. GET /status says what runs inside it, for the tests
to check that an attach left nothing behind: its threads, whether tracemalloc traces, leakbench's modules.
"""

import json
import sys
import threading
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

request_log = []


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/status":
            status = {
                "threads": sorted(t.name for t in threading.enumerate()),
                "tracing": tracemalloc.is_tracing(),
                "modules": sorted(m for m in sys.modules if m.startswith("_leakbench")),
                "requests": len(request_log),
            }
            body = json.dumps(status).encode()
        else:
            request_log.append({"path": self.path, "note": "request " + self.path * 20})  # expect: suspect
            body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
