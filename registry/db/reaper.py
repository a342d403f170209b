"""Stops the embedded PostgreSQL when the process that owns it is gone.

Run by db.embedded with a pipe from its owner as standard input: the pipe reaches end of file
when the owner closes it on a clean stop (the server is then already stopped) or when the
owner dies in any way, SIGKILL included.
"""

from __future__ import annotations

import sys
from pathlib import Path

from registry.db.embedded import stop_server


def main() -> None:
    pgdata, run_as = Path(sys.argv[1]), sys.argv[2] or None
    sys.stdin.buffer.read()
    stop_server(pgdata, run_as)


if __name__ == "__main__":
    main()
