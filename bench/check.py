"""Correctness before measuring: this server (as the analyst) and PostGraphile return the same data.

  python bench/check.py WORKDIR OUR_URL PG_URL [--q2 N]
Environment: TOKEN, PURPOSE (sent to this server only).

Sends Q1 and the first N (default 5) Q2 bodies to both targets, maps both answers onto one
neutral shape (field names differ: `referrals.edges.node` vs `allReferrals.nodes`, `notes` vs
`followUpNotesBySubjectId.nodes`, levels LOW..VERY_SERIOUS vs 1..4, timestamp spelling) and
compares everything: the same referral ids in the same order, per referral the same subject,
the same notes in the same order and the same assessments (as a set: PostGraphile orders
them by id, this server newest first). Exits 1 on any difference or GraphQL error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

LEVELS = {"LOW": 1, "MEDIUM": 2, "SERIOUS": 3, "VERY_SERIOUS": 4}


def post(url: str, body: str, auth: bool) -> tuple[dict, int]:
    headers = {"Content-Type": "application/json"}
    if auth and os.environ.get("TOKEN"):
        headers["Authorization"] = "Bearer " + os.environ["TOKEN"]
    if auth and os.environ.get("PURPOSE"):
        headers["Registry-Purpose"] = os.environ["PURPOSE"]
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        raw = response.read()
    return json.loads(raw), len(raw)


def ts(value: str | None) -> str | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(timezone.utc).isoformat()


def level(value) -> int:
    return LEVELS[value] if isinstance(value, str) else value


def note(n: dict) -> dict:
    return {**n, "createdAt": ts(n["createdAt"])}


def assessment(a: dict) -> dict:
    out = {**a, "level": level(a["level"])}
    if "createdAt" in out:
        out["createdAt"] = ts(out["createdAt"])
    return out


def unordered(items: list[dict]) -> list[dict]:
    return sorted(items, key=lambda d: json.dumps(d, sort_keys=True))


def subject_common(s: dict) -> dict:
    return {k: s[k] for k in ("reference", "givenName", "familyName", "dateOfBirth", "nationalNumber")}


def q1_ours(data: dict) -> list[dict]:
    out = []
    for edge in data["referrals"]["edges"]:
        r, s = edge["node"], edge["node"]["subject"]
        out.append({"id": r["id"], "status": r["status"], "reason": r["reason"], "createdAt": ts(r["createdAt"]),
                    "subject": subject_common(s), "notes": [note(n) for n in s["notes"]],
                    "assessments": unordered([assessment(a) for a in s["assessments"]])})
    return out


def q1_pg(data: dict) -> list[dict]:
    out = []
    for r in data["allReferrals"]["nodes"]:
        s = r["subjectBySubjectId"]
        out.append({"id": r["id"], "status": r["status"], "reason": r["reason"], "createdAt": ts(r["createdAt"]),
                    "subject": subject_common(s),
                    "notes": [note(n) for n in s["followUpNotesBySubjectId"]["nodes"]],
                    "assessments": unordered([assessment(a) for a in s["threatAssessmentsBySubjectId"]["nodes"]])})
    return out


def q2_common(s: dict, referrals: list, notes: list, assessments: list) -> dict:
    head = {k: s[k] for k in ("id", "reference", "givenName", "familyName", "dateOfBirth", "nationalNumber",
                              "institution", "legalStatus")}
    return {**head, "createdAt": ts(s["createdAt"]),
            "referrals": [{**r, "createdAt": ts(r["createdAt"]), "submittedAt": ts(r["submittedAt"])} for r in referrals],
            "notes": [note(n) for n in notes],
            "assessments": [assessment(a) for a in assessments]}


def q2_ours(data: dict) -> dict | None:
    s = data["subject"]
    return s and q2_common(s, s["referrals"], s["notes"], s["assessments"])


def q2_pg(data: dict) -> dict | None:
    s = data["subjectById"]
    return s and q2_common(s, s["referralsBySubjectId"]["nodes"], s["followUpNotesBySubjectId"]["nodes"],
                           s["threatAssessmentsBySubjectId"]["nodes"])


def first_difference(a, b, path="") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}: only in {'ours' if k in a else 'postgraphile'}"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items (ours) vs {len(b)} (postgraphile)"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r} (ours) vs {b!r} (postgraphile)"


def main(args: argparse.Namespace) -> int:
    work, failures = Path(args.workdir), 0

    def compare(name: str, ours_body: str, pg_body: str, ours_map, pg_map) -> dict | list | None:
        nonlocal failures
        ours, ours_bytes = post(args.our_url, ours_body, auth=True)
        pg, pg_bytes = post(args.pg_url, pg_body, auth=False)
        for who, answer in (("ours", ours), ("postgraphile", pg)):
            if answer.get("errors") or not answer.get("data"):
                print(f"FAIL {name}: {who} answered with errors: {json.dumps(answer.get('errors'))[:600]}")
                failures += 1
                return None
        a, b = ours_map(ours["data"]), pg_map(pg["data"])
        diff = first_difference(a, b)
        status = "ok  " if diff is None else "FAIL"
        failures += diff is not None
        print(f"{status} {name}: response bytes ours {ours_bytes}, postgraphile {pg_bytes}"
              + (f"; first difference {diff}" if diff else ""))
        return a

    q1 = compare("q1", (work / "q1.jsonl").read_text().splitlines()[0],
                 (work / "pg_q1.jsonl").read_text().splitlines()[0], q1_ours, q1_pg)
    if q1 is not None:
        notes = [len(r["notes"]) for r in q1]
        assessments = [len(r["assessments"]) for r in q1]
        print(f"     q1: {len(q1)} referrals, {sum(notes)} notes ({min(notes)}-{max(notes)} per referral, "
              f"{sum(1 for n in notes if n == 0)} with none), {sum(assessments)} assessments "
              f"({sum(1 for n in assessments if n == 0)} referrals with none)")
        if len(q1) != 50:
            print(f"FAIL q1: {len(q1)} referrals, expected 50")
            failures += 1
    ours_q2 = (work / "q2.jsonl").read_text().splitlines()
    pg_q2 = (work / "pg_q2.jsonl").read_text().splitlines()
    for i in range(min(args.q2, len(ours_q2))):
        subject = compare(f"q2[{i}]", ours_q2[i], pg_q2[i], q2_ours, q2_pg)
        if subject is not None:
            print(f"     q2[{i}]: {subject['reference']}: {len(subject['referrals'])} referrals, "
                  f"{len(subject['notes'])} notes, {len(subject['assessments'])} assessments")
    print("check: " + ("PASSED" if not failures else f"FAILED ({failures})"))
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir")
    parser.add_argument("our_url")
    parser.add_argument("pg_url")
    parser.add_argument("--q2", type=int, default=5)
    sys.exit(main(parser.parse_args()))
