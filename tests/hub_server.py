"""A local stand-in for the Hugging Face Hub HTTP API, recording requests (tests only, 127.0.0.1)."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    """Serves create_repo, file existence (HEAD resolve), preupload and commit for model repos."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.files: dict[str, dict[str, bytes]] = {}
        self.commits: list[dict] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _reply(self, code: int, payload=None, headers=None) -> None:
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if "Content-Length" not in (headers or {}):
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _record(self, body: bytes = b"") -> None:
                hub.requests.append({"method": self.command, "path": self.path,
                                     "headers": {k.lower(): v for k, v in self.headers.items()},
                                     "body": body})

            def do_HEAD(self):  # noqa: N802
                self._record()
                parts = self.path.split("?")[0].strip("/").split("/")
                if "resolve" in parts:
                    i = parts.index("resolve")
                    repo, filename = "/".join(parts[:i]), "/".join(parts[i + 2:])
                    if filename in hub.files.get(repo, {}):
                        size = len(hub.files[repo][filename])
                        return self._reply(200, headers={"X-Repo-Commit": "a" * 40, "ETag": '"e"',
                                                         "Content-Length": str(size)})
                return self._reply(404, headers={"X-Error-Code": "EntryNotFound"})

            def do_GET(self):  # noqa: N802
                self._record()
                return self._reply(404, {"error": "not found"})

            def do_POST(self):  # noqa: N802
                body = self._body()
                self._record(body)
                path = self.path.split("?")[0]
                if path == "/api/repos/create":
                    req = json.loads(body)
                    repo = f"{req.get('organization') or 'me'}/{req['name']}"
                    hub.files.setdefault(repo, {})
                    return self._reply(200, {"url": f"{hub.url}/{repo}", "name": repo})
                if path == "/api/validate-yaml":
                    return self._reply(200, {"errors": [], "warnings": []})
                if "/preupload/" in path:
                    files = json.loads(body)["files"]
                    return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                        "shouldIgnore": False} for f in files]})
                if "/commit/" in path:
                    repo = path.split("/api/models/")[1].split("/commit/")[0]
                    lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
                    added = {v["value"]["path"]: base64.b64decode(v["value"]["content"])
                             for v in lines if v["key"] == "file"}
                    hub.commits.append({"repo": repo, "files": added, "header": lines[0]["value"],
                                        "query": self.path})
                    hub.files.setdefault(repo, {}).update(added)
                    return self._reply(200, {"commitUrl": f"{hub.url}/{repo}/commit/{'b' * 40}",
                                             "commitOid": "b" * 40, "pullRequestUrl": None})
                return self._reply(404, {"error": f"unexpected {path}"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
