"""huggingface_hub's shared HTTP client, bounded while our calls run: :func:`bounded_hub_client`.

huggingface_hub (1.x and 2.x) shares one httpx client among all its calls, made by a factory that sets no timeout,
so a request the server accepts and never answers (a commit, a create_repo) waits forever; and its own retries
(preupload, downloads: up to 5 more tries with waits of 1, 2, 4, 8, 8 s) multiply any timeout. For the duration of
the ``with`` block the client is made by a wrapper of the factory in place (a user's proxies and certificates
stay): every request times out after ``timeout`` s without progress (connecting, and each read or write), and a
request is tried at most ``attempts`` times in all. Outside the block the user's factory is back. While the block
runs, other threads' Hub calls in the process share the bounds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import huggingface_hub
from huggingface_hub.utils import _http  # the one private name we read: the factory in place, to wrap and restore

PUSH_TIMEOUT_S = 60.0  # seconds without progress before a request of a push gives up
ATTEMPTS = 2  # tries of one request in all (huggingface_hub waits 1 s between them)


class HubGaveUp(Exception):
    """A request was tried ``ATTEMPTS`` times without success: ``status`` is the last HTTP answer, None when there
    was none (a timeout or a lost connection)."""

    def __init__(self, method: str, path: str, status: int | None) -> None:
        super().__init__(f"{method} {path}: {f'HTTP {status}' if status else 'no answer'} on every try")
        self.method, self.path, self.status = method, path, status


class _Attempts:
    """The event hooks that count the tries of each request and stop a retry past the limit."""

    def __init__(self, limit: int) -> None:
        self.limit, self.tries, self.last = limit, Counter[str](), dict[str, int]()

    @staticmethod
    def _key(request: Any) -> str:
        return f"{request.method} {request.url.copy_with(query=None)}"

    def on_request(self, request: Any) -> None:
        key = self._key(request)
        self.tries[key] += 1
        if self.tries[key] > self.limit:  # raised from a hook: not one of the errors huggingface_hub retries
            raise HubGaveUp(request.method, request.url.path, self.last.get(key))

    def on_response(self, response: Any) -> None:
        self.last[self._key(response.request)] = response.status_code


@contextmanager
def bounded_hub_client(timeout: float | None = None, attempts: int = ATTEMPTS) -> Iterator[None]:
    """Bound huggingface_hub's HTTP client while the block runs (module docstring; ``timeout`` None:
    :data:`PUSH_TIMEOUT_S`). With a huggingface_hub too old to have ``set_client_factory`` (before 1.0), nothing is
    changed.

    Example:
        >>> from huggingface_hub import get_session
        >>> with bounded_hub_client(timeout=7):
        ...     get_session().timeout.read
        7.0
    """
    previous: Callable[[], Any] | None = getattr(_http, "_GLOBAL_CLIENT_FACTORY", None)
    set_factory = getattr(huggingface_hub, "set_client_factory", None)
    if previous is None or set_factory is None:
        yield
        return
    counter = _Attempts(attempts)

    def factory() -> Any:
        client = previous()
        client.timeout = float(timeout or PUSH_TIMEOUT_S)  # httpx: connect, read, write and pool, each
        hooks = client.event_hooks
        client.event_hooks = {"request": [*hooks.get("request", []), counter.on_request],
                              "response": [*hooks.get("response", []), counter.on_response]}
        return client

    set_factory(factory)
    try:
        yield
    finally:
        set_factory(previous)
