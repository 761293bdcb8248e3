"""`python -m gostartbench`: the command line."""

from __future__ import annotations

from gostartbench.cli import main

raise SystemExit(main())
