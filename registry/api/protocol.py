"""HTTP/1.1 as uvicorn speaks it, with the bounds it lacks: request headers limited in count and
size (431), and a deadline to send them (408, then the connection is closed).

uvicorn reads headers without limit or deadline: 20,000 headers, an 8 MB Authorization header
or a client sending one byte a second (slowloris) were all accepted. The parser's callbacks are
uvicorn's protocol hooks (stable across its releases); `registry serve` selects this class.
The body has its own deadline in api.http.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from registry.config import get_settings

PATH = "registry.api.protocol:BoundedHttpProtocol"


@lru_cache
def _bounds() -> tuple[int, int, float]:
    settings = get_settings()
    return settings.max_header_count, settings.max_header_bytes, settings.header_timeout_seconds


def _answer(status: int, reason: str, message: str) -> bytes:
    body = f'{{"errors":[{{"message":"{message}","extensions":{{"code":"BAD_USER_INPUT"}}}}]}}'.encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode() + body


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing what a request's headers may not be."""

    _header_timer: asyncio.TimerHandle | None = None
    _refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count, self._header_bytes = 0, 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._header_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        max_count, max_bytes, _ = _bounds()
        self._header_count += 1
        self._header_bytes += len(name) + len(value)
        if self._header_count > max_count or self._header_bytes > max_bytes:
            message = f"at most {max_count} request headers of {max_bytes} bytes in all"
            self._refuse(431, "Request Header Fields Too Large", message)
            raise ValueError("request headers over the limit")  # stops the parser
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # a refusal above already answered
            super().send_400_response(msg)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(_bounds()[2], self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if self.cycle is None or self.cycle.response_complete:  # no request under way: headers awaited
            self._refuse(408, "Request Timeout", "the request headers did not arrive in time")

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._refused = True
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_answer(status, reason, message))
            self.transport.close()
