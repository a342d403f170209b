"""Sample the resident memory of a server's process tree until told to stop.

  python bench/rss.py PID OUTFILE [INTERVAL_S]
Every INTERVAL_S (default 0.5) sums VmRSS over PID and all its descendants (uvicorn's
supervisor and workers; node for PostGraphile), from /proc. On SIGTERM/SIGINT (or when the
tree is gone) writes {"rss_peak_mb", "rss_mean_mb", "rss_samples", "processes"} to OUTFILE.
RSS of forked processes counts shared pages once per process, as `ps` does.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path


def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the command name may hold spaces
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree(root: int) -> list[int]:
    kids, out, todo = children_map(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main(root: int, outfile: Path, interval: float) -> None:
    stop = False

    def on_signal(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    samples, processes = [], 0
    while not stop and Path(f"/proc/{root}").exists():
        pids = tree(root)
        processes = max(processes, len(pids))
        samples.append(sum(rss_kb(p) for p in pids))
        time.sleep(interval)
    result = {
        "rss_peak_mb": round(max(samples) / 1024, 1) if samples else None,
        "rss_mean_mb": round(sum(samples) / len(samples) / 1024, 1) if samples else None,
        "rss_samples": len(samples),
        "processes": processes,
    }
    outfile.write_text(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.5)
