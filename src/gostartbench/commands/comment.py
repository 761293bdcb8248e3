"""`gostartbench comment FILE`: post the gate's markdown on the pull request, or update the
comment it posted before — one comment per pull request, not one per push.

It reads what a GitHub Actions job provides: the event file (GITHUB_EVENT_PATH: the pull
request's number), the repository (GITHUB_REPOSITORY), the API (GITHUB_API_URL) and a token
(GITHUB_TOKEN, or --token-env NAME). Its own comment is found by a marker line, so a second push
edits it in place. Outside a pull request, or without a token, it says why and does nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from gostartbench.errors import EXIT_FAILED, EXIT_OK, InputError

MARKER = "<!-- gostartbench gate -->"  # the first line of the comment: how it is found again
PAGE = 100  # comments per page of the listing


def _request(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    if not url.startswith(("https://", "http://")):  # the API, never a file: or other scheme
        raise ValueError(f"not an http(s) API address: {url}")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={  # noqa: S310
        "Accept": "application/vnd.github+json", "Authorization": f"Bearer {token}",
        "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "gostartbench",
        **({"Content-Type": "application/json"} if data is not None else {})})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (scheme checked)
        text = resp.read().decode()
    return json.loads(text) if text else None


def pull_number(event_path: str) -> int | None:
    """The pull request's number from the event file (None for any other event)."""
    try:
        event = json.loads(Path(event_path).read_text())
    except (OSError, ValueError):
        return None
    pr = event.get("pull_request") or {}
    n = pr.get("number") or (event.get("number") if "pull_request" in event else None)
    return int(n) if n else None


def upsert(api: str, repo: str, number: int, token: str, body: str) -> tuple[str, int]:
    """Create the comment, or edit the one carrying MARKER: ("created" | "updated", its id)."""
    text = f"{MARKER}\n{body}"
    page = 1
    while True:
        got = _request("GET", f"{api}/repos/{repo}/issues/{number}/comments?per_page={PAGE}"
                              f"&page={page}", token) or []
        for c in got:
            if str(c.get("body", "")).startswith(MARKER):
                _request("PATCH", f"{api}/repos/{repo}/issues/comments/{c['id']}", token,
                         {"body": text})
                return "updated", int(c["id"])
        if len(got) < PAGE:
            break
        page += 1
    made = _request("POST", f"{api}/repos/{repo}/issues/{number}/comments", token,
                    {"body": text})
    return "created", int((made or {}).get("id", 0))


def comment_command(args: argparse.Namespace) -> int:
    """Post or update the pull request's one gostartbench comment from FILE."""
    path = Path(args.file)
    if not path.is_file():
        raise InputError(f"{path}: no such file (the gate's markdown)", key="FILE")
    token = os.environ.get(args.token_env, "")
    number = pull_number(os.environ.get("GITHUB_EVENT_PATH", ""))
    repo = os.environ.get("GITHUB_REPOSITORY", "")
    if number is None or not repo:
        print("comment: not a pull request event (GITHUB_EVENT_PATH, GITHUB_REPOSITORY): "
              "nothing posted")
        return EXIT_OK
    if not token:
        print(f"comment: no token in {args.token_env}: nothing posted")
        return EXIT_OK
    api = os.environ.get("GITHUB_API_URL", "").rstrip("/")
    if not api:
        print("comment: no GITHUB_API_URL: nothing posted")
        return EXIT_OK
    try:
        how, cid = upsert(api, repo, number, token, path.read_text())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"comment: could not post on {repo}#{number}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"comment: {how} comment {cid} on {repo}#{number}")
    return EXIT_OK
