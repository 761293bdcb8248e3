"""gostartbench: what each Go build knob does to startup time, size and memory."""

from __future__ import annotations

__version__ = "0.1.0"
