"""What both stores' publishers share: the end of their errors (what readers still see when
a publish stops part-way), the caller's metadata and their timestamps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


def caller_metadata(
    metadata: Mapping[str, object] | None, reserved: frozenset[str]
) -> dict[str, str]:
    """The caller's metadata as text; keys the publisher writes itself are refused."""
    extra = {str(k): str(v) for k, v in (metadata or {}).items()}
    clash = sorted(reserved & extra.keys())
    if clash:
        raise ValueError(f"metadata keys {clash} are reserved by the publisher")
    return extra


def iso_now(offset_seconds: float = 0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=offset_seconds)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class PublishOutcome:
    """How far a publish got; the publishers update it as they go."""

    version: str
    unit: str  # what was written so far: "customers" (Redis) or "items" (DynamoDB)
    check_switch: str  # what to do when the switch itself may or may not have happened
    previous: str | None = None
    previous_known: bool = False
    written: int = 0
    flipping: bool = False

    def outcome(self) -> str:
        if self.flipping:
            return f"the switch to version {self.version} may or may not have happened: " + (
                self.check_switch
            )
        if not self.previous_known:
            return "nothing was switched"
        if self.previous is None:
            return "nothing was switched: readers still get no forecasts (none published yet)"
        return f"nothing was switched: readers still get version {self.previous}"

    def after(self) -> str:
        if not self.written:
            return ""
        return f" after {self.written:,} {self.unit} of version {self.version} were written"
