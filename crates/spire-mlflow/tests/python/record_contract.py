"""Records the MLflow client's HTTP exchanges with a real MLflow tracking server.

Usage: python record_contract.py OUTPUT.json

Starts `mlflow server` (SQLite backend, artifacts served by the server, both in a temporary
folder) on a free port, puts a recording proxy in front of it, runs `scenario.run` through
the proxy, and writes every exchange (method, path, query, request body, status, response
body) to OUTPUT.json. The Rust test `contract` replays the file against Spire.
Run it with the venv of scripts/mlflow-venv.sh (the pinned mlflow version).
"""

import base64
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenario  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encode_body(data, content_type):
    if not data:
        return None
    if "json" in (content_type or ""):
        try:
            return {"json": json.loads(data)}
        except ValueError:
            pass
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def make_proxy(upstream, exchanges):
    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {
                k: v for k, v in self.headers.items()
                if k.lower() in ("content-type", "authorization")
            }
            resp = requests.request(
                self.command, upstream + self.path, data=body or None, headers=headers,
                timeout=60, allow_redirects=False,
            )
            parsed = urllib.parse.urlsplit(self.path)
            exchanges.append({
                "method": self.command,
                "path": parsed.path,
                "query": urllib.parse.parse_qsl(parsed.query, keep_blank_values=True),
                "request_content_type": self.headers.get("Content-Type"),
                "request": encode_body(body, self.headers.get("Content-Type")),
                "status": resp.status_code,
                "response": encode_body(resp.content, resp.headers.get("Content-Type")),
            })
            self.send_response(resp.status_code)
            for k, v in resp.headers.items():
                if k.lower() in ("content-type",):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(resp.content)))
            self.end_headers()
            self.wfile.write(resp.content)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    return Proxy


def main():
    out = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
             "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db",
             "--artifacts-destination", f"{tmp}/artifacts", "--workers", "1"],
            stdout=open(f"{tmp}/server.log", "w"), stderr=subprocess.STDOUT,
        )
        upstream = f"http://127.0.0.1:{port}"
        try:
            for _ in range(240):
                try:
                    if requests.get(upstream + "/health", timeout=1).ok:
                        break
                except requests.RequestException:
                    pass
                if server.poll() is not None:
                    sys.exit("mlflow server exited:\n" + open(f"{tmp}/server.log").read())
                time.sleep(0.5)
            else:
                sys.exit("mlflow server did not start:\n" + open(f"{tmp}/server.log").read())
            exchanges = []
            proxy = http.server.ThreadingHTTPServer(
                ("127.0.0.1", 0), make_proxy(upstream, exchanges)
            )
            threading.Thread(target=proxy.serve_forever, daemon=True).start()
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
            scenario.run(f"http://127.0.0.1:{proxy.server_address[1]}")
            proxy.shutdown()
        finally:
            server.terminate()
            server.wait(timeout=30)
    import mlflow
    with open(out, "w") as f:
        json.dump({"mlflow_version": mlflow.__version__, "exchanges": exchanges}, f, indent=1)
        f.write("\n")
    print(f"recorded {len(exchanges)} exchanges into {out}")


if __name__ == "__main__":
    main()
