"""What the commands print to a terminal: aligned tables and sizes."""

from __future__ import annotations

from typing import Any


def size_text(v: Any) -> str:
    if v in (None, ""):
        return "-"
    n = float(v)
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"




def print_table(header: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(x) for x in r] for r in rows]
    widths = [max([len(h), *[len(r[i]) for r in cells]]) for i, h in enumerate(header)]
    out = [("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    out += [("  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True))).rstrip()
            for r in cells]
    print("\n".join(out))
