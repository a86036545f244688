"""What readers still see when a publish stops part-way: the end of both stores' errors."""

from __future__ import annotations

from dataclasses import dataclass


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
