"""What a run of the daemon did, counted while it runs and returned when it stops."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["RunSummary"]


@dataclass
class RunSummary:
    frames: int = 0  # frames the cameras delivered to the loop
    processed: int = 0  # frames run through detection, tracking and rules
    cases: int = 0  # cases queued in the outbox
    events: Counter[str] = field(default_factory=Counter)  # rule event kind -> count (after the verifier)
    detections: Counter[str] = field(default_factory=Counter)  # class name -> count over processed frames
    stopped_by: str = ""  # "stop", "duration" or "sources ended"
    outbox: dict[str, int] = field(default_factory=dict)  # case counts by state at the end
    model_reloads: int = 0  # model versions rolled out while running
    zone_reloads: int = 0  # cameras whose zones a version from the center replaced while running
