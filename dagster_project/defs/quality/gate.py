"""The load gate: which loads may reach the marts. Today: the quarantine-share rule."""

from __future__ import annotations

PUBLISHED = "published"
BLOCKED = "blocked"
REJECTED = "rejected"
DUPLICATE = "duplicate"


def quarantine_verdict(rows_read: int, rows_quarantined: int, threshold: float) -> tuple[str, str]:
    """(status, reason) of a readable load by the share of its data rows set aside."""
    if rows_read and rows_quarantined / rows_read > threshold:
        share = rows_quarantined / rows_read
        return BLOCKED, (
            f"quarantined {rows_quarantined} of {rows_read} rows ({share:.1%}), above the "
            f"{threshold:.0%} threshold; fix the file and land it again, or release the load"
        )
    return PUBLISHED, ""
