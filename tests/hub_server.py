"""A local stand-in for the Hugging Face Hub HTTP API, recording requests (tests only, 127.0.0.1)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    """Serves create_repo, file existence and download (HEAD/GET resolve), preupload and commit for model repos;
    ``routes`` maps any other GET path to ``(status, body)`` (a stand-in for other servers, e.g. Zhang's S3).
    Faults: a request whose path contains a key of ``answers`` gets that HTTP status; one whose path contains a
    string of ``stall`` gets no answer until the hub is closed (a Hub that accepts the request and never answers)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.files: dict[str, dict[str, bytes]] = {}
        self.commits: list[dict] = []
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.answers: dict[str, int] = {}
        self.stall: set[str] = set()
        self.closed = threading.Event()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _reply(self, code: int, payload=None, headers=None, raw: bytes | None = None) -> None:
                """A JSON ``payload`` (or nothing), or ``raw`` bytes as they are."""
                data = raw if raw is not None else json.dumps(payload).encode() if payload is not None else b""
                self.send_response(code)
                if raw is None:
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

            def _fault(self) -> bool:
                """Answer ``hub.answers``' status, or stall for ``hub.stall``; True when the request is dealt with."""
                if any(part in self.path for part in hub.stall):
                    hub.closed.wait()
                    return True
                code = next((c for part, c in hub.answers.items() if part in self.path), None)
                if code is not None:
                    self._reply(code, {"error": f"injected {code}"})
                    return True
                return False

            def _resolve(self) -> tuple[int, bytes | None, dict]:
                parts = self.path.split("?")[0].strip("/").split("/")
                if "resolve" not in parts:
                    return 404, None, {"X-Error-Code": "EntryNotFound"}
                i = parts.index("resolve")
                repo, filename = "/".join(parts[:i]), "/".join(parts[i + 2:])
                if repo not in hub.files:
                    return 404, None, {"X-Error-Code": "RepoNotFound"}
                if filename not in hub.files[repo]:
                    return 404, None, {"X-Error-Code": "EntryNotFound"}
                data = hub.files[repo][filename]
                etag = f'"{hashlib.sha256(data).hexdigest()}"'  # the Hub cache names blobs by it: one per content
                return 200, data, {"X-Repo-Commit": "a" * 40, "ETag": etag, "Content-Length": str(len(data))}

            def do_HEAD(self):  # noqa: N802
                self._record()
                if self._fault():
                    return None
                code, _, headers = self._resolve()
                return self._reply(code, headers=headers)

            def do_GET(self):  # noqa: N802
                self._record()
                if self._fault():
                    return None
                path = self.path.split("?")[0]
                if path in hub.routes:
                    code, body = hub.routes[path]
                    return self._reply(code, raw=body)
                code, data, headers = self._resolve()
                if data is None:
                    return self._reply(404, {"error": "not found"}, headers=headers)
                return self._reply(200, headers=headers, raw=data)

            def do_POST(self):  # noqa: N802
                body = self._body()
                self._record(body)
                if self._fault():
                    return None
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
        self.closed.set()  # frees the handlers of stalled requests
        self.server.shutdown()
        self.server.server_close()
