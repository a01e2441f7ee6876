"""The conflict model of offline edits: what wins when a phone and the server both changed a field.

Phones edit work items offline and push the edits later (`task.update`, or a WatermelonDB row). Each edit is
judged against **the phone's base**: the snapshot of the phone's last pull when it made the edit (the `cursor`
sent with `/v1/sync/push`; for WatermelonDB the pull before the one that preceded the push). A field **conflicts**
when someone else changed it on the server at or after that base. Not a conflict, ever:

- the phone's own earlier pushes (a phone that edits notes twice, syncing in between, replaces its own text), and
- the server's reactions to the phone's own mutations (its check-in moving the work item to `in_progress`, in
  the same push or an earlier one): the server records who caused each change (`writer`, the phone's user and
  device id) and a phone never conflicts with itself.

Per field, on a conflict (notes whose base text is unknown: the server's text, then the phone's):

| field   | what wins | what the phone is told |
|---------|-----------|------------------------|
| status  | the server's value (it is the judge: expiry, review); an expired item never reopens | `server_kept` |
| notes   | both: a three-way line merge against the text the phone had seen (the server's lines first) | `merged` |
| answers | merged per question; on the same question the phone wins (it was collected at the shop) | `merged` |
| outcome | merged per key, like answers | `merged` |

A value the phone sends that equals what this same phone last sent for the field, while the phone has not pulled
since, is a retry of that push and changes nothing (`replay`). A value set back to an earlier one (yes, no, yes;
each synced) is a new edit and is applied.

**Scope exits.** An edit from a phone whose work item was reassigned away meanwhile is never dropped: notes are
merged in, answers and outcome keys the new assignee has not filled are applied (`late_applied`), everything else
is kept in the history and shown on the work item (`late_edits`) to the new assignee and the supervisors
(`late_kept`); the former assignee's phone gets the result and, on its next pull, the removal.

Every value anyone sends, applied or not, is kept in the work item's history
(`GET /v1/work-items/{id}/history`). Whatever the resolution, the record is bumped for the phone, so its next
pull brings the server's truth back.
"""

from __future__ import annotations

import enum


class Resolution(enum.StrEnum):
    """What became of one field of an edit (in `conflicts` of a `task.update` result, and in the history)."""

    APPLIED = "applied"  # no conflict: the phone's value is the server's now (history only)
    MERGED = "merged"  # conflict: both sides kept (notes), or merged per key (answers, outcome)
    SERVER_KEPT = "server_kept"  # conflict: the server's value stays (status); the phone's is in the history
    PHONE_APPLIED = "phone_applied"  # conflict: the phone's value replaced the server's
    REPLAY = "replay"  # a retry of a value this phone already sent: nothing changed
    LATE_APPLIED = "late_applied"  # from a former assignee: merged into the work item
    LATE_KEPT = "late_kept"  # from a former assignee: kept in the history and shown as a late edit


class Origin(enum.StrEnum):
    ONLINE = "online"  # an online request (PATCH /v1/work-items/{id})
    SYNC = "sync"  # a queued edit pushed by a phone
    SERVER = "server"  # the server itself: expiry, a reaction to a check-in, a reassignment


# What each editable field does on a conflict (the table above, for code that needs it).
ON_CONFLICT: dict[str, Resolution] = {
    "status": Resolution.SERVER_KEPT,
    "notes": Resolution.MERGED,
    "answers": Resolution.MERGED,
    "outcome": Resolution.MERGED,
}
