"""Export documents written by older runstores, as export format 3 gives the same rows (for the
tests of committed fixtures)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from runstore import WorkflowState


def as_format_3(
    document: dict[str, Any], entries: Iterable[dict[str, Any]] = (), *, imported: bool = False
) -> dict[str, Any]:
    """``document`` (format 1 or 2) and the store's ``entries`` (dicts of the fields of format
    4's entries) as format 3 exports them: sessions by id, each session's runs by (created_at,
    id), entries by (scope, key) with no owner or expiry. ``imported``: as an import of the
    document stores it (a state with every field)."""
    document = json.loads(json.dumps(document))
    if document["version"] == 1:
        for session in document["sessions"]:
            seqs = [m["seq"] for m in document["messages"] if m["session_id"] == session["id"]]
            session.update(parent_session_id=None, forked_from_seq=None, last_seq=max(seqs))
        for message in document["messages"]:
            message.update(metadata=None, token_count=None, idempotency_key=None)
    document["version"] = 3
    for session in document["sessions"]:
        session.setdefault("metadata", {})  # sessions had none before
    if imported:
        for run in document["runs"]:
            if run["state"] is not None:
                run["state"] = WorkflowState.from_dict(run["state"]).to_dict()
    document["sessions"].sort(key=lambda s: s["id"])
    document["runs"].sort(
        key=lambda r: (r["session_id"], datetime.fromisoformat(r["created_at"]), r["id"])
    )
    document["entries"] = sorted(
        ({**entry, "owner": None, "expires_at": None} for entry in entries),
        key=lambda e: (e["scope"], e["key"]),
    )
    return document
