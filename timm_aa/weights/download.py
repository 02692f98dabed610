"""Download one file over HTTP(S) with a short timeout into a temporary file (standard library only)."""

from __future__ import annotations

import os
import socket
import tempfile
import urllib.error
import urllib.request

from tqdm.auto import tqdm

from ..errors import TimmAAError

DOWNLOAD_TIMEOUT_S = 10.0


class DownloadFailed(TimmAAError):
    """The server could not be reached or did not answer 200; ``reason`` is the short form (``HTTP 403``)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"could not download {url}: {reason}")
        self.url, self.reason = url, reason


def download_to_temp(url: str, folder: str, timeout: float = DOWNLOAD_TIMEOUT_S, progress: bool = True) -> str:
    """Download ``url`` into a new temporary file in ``folder`` and return its path (the caller removes it).

    ``timeout`` bounds the connection and each read. Raises :class:`DownloadFailed`.

    Example:
        >>> # path = download_to_temp('https://example.org/w.pth', '/tmp')
    """
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-download-", suffix=".pth")
    reason = "interrupted"
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "timm-aa"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(url), disable=not progress,
                      leave=False) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
        reason = ""
        return tmp
    except urllib.error.HTTPError as err:
        reason = f"HTTP {err.code}"
    except urllib.error.URLError as err:
        timed_out = isinstance(err.reason, (TimeoutError, socket.timeout))
        reason = f"timed out after {timeout:g} s" if timed_out else f"unreachable ({err.reason})"
    except TimeoutError:
        reason = f"timed out after {timeout:g} s"
    except OSError as err:
        reason = f"failed ({err})"
    finally:
        if reason:
            os.unlink(tmp)
    raise DownloadFailed(url, reason)
