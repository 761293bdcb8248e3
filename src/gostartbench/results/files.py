"""Writing and reading the run folder's files safely.

Every file is written so that `kill -9` at any moment leaves it readable: whole files are
written to a temporary name and renamed; samples are appended one whole line per `write()`
(a single write to a regular file is not torn by a signal), and readers drop a last line that
lacks its newline.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a whole file under a temporary name, fsync, rename into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    """A JSON file, written atomically."""
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    """A JSON file's content."""
    return json.loads(path.read_text())


def write_csv(path: Path, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """A CSV file with these columns, written atomically."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(r.get(k)) for k in columns})
    write_atomic(path, buf.getvalue())


def _fmt(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if v == v else ""
    return v


class AppendCsv:
    """An append-only CSV: a header once, then one whole line per os.write() (O_APPEND)."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = path
        self.columns = list(columns)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(self.fd).st_size
        if size == 0:
            self._write([self.columns])
        else:
            with open(path, "rb") as fh:
                # A file an older version began (resume): rows keep its header's columns.
                head = next(csv.reader([fh.readline().decode(errors="replace")]), [])
                if head and set(head) <= set(self.columns):
                    self.columns = head
                # A torn last line from an earlier kill: end it, so the next row starts clean.
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    os.write(self.fd, b"\n")

    def _write(self, rows: Sequence[Sequence[Any]]) -> None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for r in rows:
            w.writerow(r)
        os.write(self.fd, buf.getvalue().encode())

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row."""
        self._write([[_fmt(row.get(k)) for k in self.columns]])

    def write_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append rows in one write."""
        if rows:
            self._write([[_fmt(r.get(k)) for k in self.columns] for r in rows])

    def close(self) -> None:
        """fsync and close."""
        if self.fd >= 0:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1


def whole_lines(path: Path) -> bytes:
    """A file's bytes up to its last newline: a torn last line (a kill mid-write) is dropped
    (b'' for a missing file). Every reader of the run folder's CSVs goes through here."""
    if not path.exists():
        return b""
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1] if data and not data.endswith(b"\n") else data


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV written by this module; a torn last line (no newline) is dropped, as are
    lines whose field count is wrong (a kill mid-line in an older writer)."""
    data = whole_lines(path).decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(data))
    try:
        header = next(reader)
    except StopIteration:
        return []
    return [dict(zip(header, r, strict=True)) for r in reader if len(r) == len(header)]


class RunLock:
    """One run per folder: a second `run` into a folder in use is refused, not interleaved."""

    def __init__(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.fh = open(run_dir / ".lock", "a+b")  # noqa: SIM115 - held for the run's life
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.close()
            raise
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"{os.getpid()}\n".encode())
        self.fh.flush()

    def release(self) -> None:
        """Let another run use the folder."""
        try:
            fcntl.flock(self.fh, fcntl.LOCK_UN)
        finally:
            self.fh.close()
