"""When the journal of a download is committed: a pure policy.

A commit syncs every written payload byte and rewrites the journal, so it is not
free; batching bounds what a crash loses and how long each sync stalls the writers.
"""

from __future__ import annotations

MiB = 1024 * 1024

# At most one second of transfer is refetched after a kill...
COMMIT_INTERVAL_SECONDS = 1.0
# ...and at LAN speeds (about 1.8 GiB/s measured) a second is about 115 chunks of
# 16 MiB; committing every 64 chunks or 512 MiB, whichever comes first, also keeps
# each sync's dirty data small enough not to stall the writers for long.
COMMIT_EVERY_CHUNKS = 64
COMMIT_EVERY_BYTES = 512 * MiB


def should_commit(
    *, now: float, last_commit_at: float, chunks_since: int, bytes_since: int
) -> bool:
    """True when the chunks completed since the last commit should be journaled now.

    Nothing to commit is never a commit; otherwise commit once
    :data:`COMMIT_INTERVAL_SECONDS` passed since ``last_commit_at``, or
    :data:`COMMIT_EVERY_CHUNKS` chunks or :data:`COMMIT_EVERY_BYTES` bytes
    completed since.
    """
    if chunks_since <= 0:
        return False
    return (
        now - last_commit_at >= COMMIT_INTERVAL_SECONDS
        or chunks_since >= COMMIT_EVERY_CHUNKS
        or bytes_since >= COMMIT_EVERY_BYTES
    )
