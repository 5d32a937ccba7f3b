"""Every SQLite statement runstore runs: the schema, its migrations and the queries.

Both drivers run exactly these statements. Timestamps are integer microseconds since the
Unix epoch (UTC), so they round-trip exactly and sort correctly. Payloads are JSON text.
Nothing here is ever assembled from user input: values are always bound parameters.
"""

from __future__ import annotations

from typing import Any

from ._columns import AGENTS, CHAT, ENTRIES, MESSAGES, RUNS, SESSIONS, Table

# ``PRAGMA application_id`` of a runstore database ("RSTO"): tells our files from others.
APPLICATION_ID = 0x5253544F

# -- schema migrations -----------------------------------------------------------------
# MIGRATIONS[i] takes a database from ``PRAGMA user_version`` i to i + 1. Each is a tuple of
# single statements, run in one transaction. Released migrations never change: add one.

_V1: tuple[str, ...] = (
    f"PRAGMA application_id = {APPLICATION_ID}",
    """CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        description TEXT,
        input_schema TEXT,
        output_schema TEXT,
        workflow TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    """CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
        external_id TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    "CREATE INDEX sessions_by_activity ON sessions (updated_at, id)",
    "CREATE INDEX sessions_by_agent ON sessions (agent_id, updated_at, id)",
    """CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        agent_id TEXT NOT NULL,
        input_data TEXT,
        output_data TEXT,
        context TEXT,
        duration_seconds REAL,
        state TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    "CREATE INDEX runs_by_session ON runs (session_id, created_at, id)",
    # run_id has no foreign key: runs are only ever deleted with their session, whose
    # messages go too, and a key would need one more index to update on every insert.
    """CREATE TABLE messages (
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        run_id TEXT,
        role TEXT NOT NULL,
        content TEXT,
        created_at INTEGER NOT NULL
    )""",
    "CREATE UNIQUE INDEX messages_by_seq ON messages (session_id, seq)",
)

# v2: ``seq`` comes from a per-session counter bumped by the insert itself (v1 computed
# MAX(seq) + 1 in the application); messages are stored clustered by (session_id, seq), so
# an insert writes one b-tree and the newest messages of a session are adjacent; sessions
# are found by external_id through an index. Indexes that hold ``updated_at`` are rewritten
# on every message (activity), so only the two that list_sessions' ordering needs do.
_V2: tuple[str, ...] = (
    """CREATE TABLE messages_v2 (
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        run_id TEXT,
        role TEXT NOT NULL,
        content TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (session_id, seq)
    ) WITHOUT ROWID""",
    """INSERT INTO messages_v2 (session_id, seq, run_id, role, content, created_at)
        SELECT session_id, seq, run_id, role, content, created_at FROM messages""",
    "DROP TABLE messages",
    "ALTER TABLE messages_v2 RENAME TO messages",
    "ALTER TABLE sessions ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0",
    """UPDATE sessions SET last_seq = coalesce(
        (SELECT max(seq) FROM messages WHERE messages.session_id = sessions.id), 0)""",
    """CREATE TRIGGER messages_bump_session AFTER INSERT ON messages
    BEGIN
        UPDATE sessions SET last_seq = NEW.seq, updated_at = NEW.created_at
        WHERE id = NEW.session_id;
    END""",
    "CREATE INDEX sessions_by_agent_external ON sessions (agent_id, external_id)",
    "CREATE INDEX sessions_by_external ON sessions (external_id)",
)

# v3: messages v2 (metadata as JSON text, token_count, idempotency_key: unique per session,
# indexed only where given) and forks (parent_session_id, forked_from_seq). ``last_seq`` is
# now the session's high-water mark: undo deletes messages but never lowers it, so a seq is
# never given out twice; the trigger only raises it (fork and import insert a session with
# its last_seq first, then copy messages without touching the session row). Fewer writes
# per message: the per-agent activity index (rewritten on every message) is gone;
# list_sessions(workflow_name=...) walks the activity index instead.
_V3: tuple[str, ...] = (
    "ALTER TABLE messages ADD COLUMN metadata TEXT",
    "ALTER TABLE messages ADD COLUMN token_count INTEGER",
    "ALTER TABLE messages ADD COLUMN idempotency_key TEXT",
    """CREATE UNIQUE INDEX messages_by_key ON messages (session_id, idempotency_key)
        WHERE idempotency_key IS NOT NULL""",
    "ALTER TABLE sessions ADD COLUMN parent_session_id TEXT",
    "ALTER TABLE sessions ADD COLUMN forked_from_seq INTEGER",
    "DROP TRIGGER messages_bump_session",
    """CREATE TRIGGER messages_bump_session AFTER INSERT ON messages
    BEGIN
        UPDATE sessions SET last_seq = NEW.seq, updated_at = NEW.created_at
        WHERE id = NEW.session_id AND last_seq < NEW.seq;
    END""",
    "DROP INDEX sessions_by_agent",
)

# v4: entries, the ordered key-value store (docs/contract.md, "Entries"). A rowid table, as
# entries may hold large blobs; (scope, key) is its unique index, so keys are read in order.
_V4: tuple[str, ...] = (
    """CREATE TABLE entries (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT,
        data BLOB,
        tag TEXT,
        version INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (scope, key)
    )""",
    "CREATE INDEX entries_by_tag ON entries (scope, tag) WHERE tag IS NOT NULL",
)

# v5: a user's data over its life (docs/contract.md, "Erasure", "Retention"): entries name
# their owner (a session's external_id) and may expire; both are indexed where given.
_V5: tuple[str, ...] = (
    "ALTER TABLE entries ADD COLUMN owner TEXT",
    "ALTER TABLE entries ADD COLUMN expires_at INTEGER",
    "CREATE INDEX entries_by_owner ON entries (owner) WHERE owner IS NOT NULL",
    "CREATE INDEX entries_by_expiry ON entries (expires_at) WHERE expires_at IS NOT NULL",
)

# v6: the search index (docs/contract.md, "Search"): the terms of each message
# (``_search.index_terms``), one row per term, found by term through an index. Writes stay
# cheap: an insert only notes the message in ``message_pending``, and the next search
# indexes the pending messages first (``PENDING_MESSAGES``). A delete takes the message's
# rows out of both (triggers, so every path that deletes messages does). The messages
# stored before wait in ``message_pending`` too.
_V6: tuple[str, ...] = (
    """CREATE TABLE message_terms (
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        term TEXT NOT NULL,
        PRIMARY KEY (session_id, seq, term)
    ) WITHOUT ROWID""",
    "CREATE INDEX message_terms_by_term ON message_terms (term)",
    """CREATE TABLE message_pending (
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (session_id, seq)
    ) WITHOUT ROWID""",
    """INSERT INTO message_pending (session_id, seq)
        SELECT session_id, seq FROM messages WHERE content IS NOT NULL""",
    """CREATE TRIGGER messages_pending AFTER INSERT ON messages WHEN NEW.content IS NOT NULL
    BEGIN
        INSERT INTO message_pending (session_id, seq) VALUES (NEW.session_id, NEW.seq);
    END""",
    """CREATE TRIGGER messages_unindex AFTER DELETE ON messages WHEN OLD.content IS NOT NULL
    BEGIN
        DELETE FROM message_pending WHERE session_id = OLD.session_id AND seq = OLD.seq;
        DELETE FROM message_terms WHERE session_id = OLD.session_id AND seq = OLD.seq;
    END""",
)

# v7: session metadata (docs/contract.md, "Session metadata"): a JSON object, '{}' when none
# was set (so every session has one, old ones included).
_V7: tuple[str, ...] = ("ALTER TABLE sessions ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'",)

# v8: accounting from counters (docs/contract.md, "Accounting"): each session keeps how many
# runs and messages it holds and its messages' content bytes (UTF-8), so that stats reads
# sessions, not messages. Triggers keep them, so every path that inserts or deletes a
# message or adds a run does (fork and import included); the insert trigger still raises
# last_seq and the activity only for a new seq. Counters of the stored rows are filled in.
_BYTES = "coalesce(length(CAST({0}.content AS BLOB)), 0)"
_V8: tuple[str, ...] = (
    "ALTER TABLE sessions ADD COLUMN run_count INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE sessions ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE sessions ADD COLUMN content_bytes INTEGER NOT NULL DEFAULT 0",
    """UPDATE sessions SET
        run_count = (SELECT count(*) FROM runs WHERE runs.session_id = sessions.id),
        message_count = (SELECT count(*) FROM messages WHERE messages.session_id = sessions.id),
        content_bytes = (SELECT coalesce(sum(length(CAST(content AS BLOB))), 0) FROM messages
            WHERE messages.session_id = sessions.id)""",
    "DROP TRIGGER messages_bump_session",
    f"""CREATE TRIGGER messages_bump_session AFTER INSERT ON messages
    BEGIN
        UPDATE sessions SET last_seq = max(last_seq, NEW.seq),
            updated_at = CASE WHEN last_seq < NEW.seq THEN NEW.created_at ELSE updated_at END,
            message_count = message_count + 1,
            content_bytes = content_bytes + {_BYTES.format("NEW")}
        WHERE id = NEW.session_id;
    END""",
    f"""CREATE TRIGGER messages_uncount AFTER DELETE ON messages
    BEGIN
        UPDATE sessions SET message_count = message_count - 1,
            content_bytes = content_bytes - {_BYTES.format("OLD")}
        WHERE id = OLD.session_id;
    END""",
    """CREATE TRIGGER runs_count AFTER INSERT ON runs
    BEGIN
        UPDATE sessions SET run_count = run_count + 1 WHERE id = NEW.session_id;
    END""",
)

# v9: the search index of entries (docs/contract.md, "Search"): the terms of each entry's
# text (``_search.entry_terms``), one row per term, found by (scope, term) through an index.
# As for messages, writes stay cheap: a write of an entry's value only notes the entry in
# ``entry_pending`` (a trigger, so every path does: put, merge, copy, import), and the next
# search of its scope indexes the scope's pending entries first (``PENDING_ENTRIES``).
# Replacing a value or deleting an entry (erasure, pruning, expiry too) takes its rows out
# of both. The entries stored before wait in ``entry_pending`` too.
_NOTE_PENDING = """INSERT INTO entry_pending (scope, key) SELECT NEW.scope, NEW.key
        WHERE NOT EXISTS (SELECT 1 FROM entry_pending WHERE scope = NEW.scope AND key = NEW.key)"""
_V9: tuple[str, ...] = (
    """CREATE TABLE entry_terms (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        term TEXT NOT NULL,
        PRIMARY KEY (scope, key, term)
    ) WITHOUT ROWID""",
    "CREATE INDEX entry_terms_by_term ON entry_terms (scope, term)",
    """CREATE TABLE entry_pending (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY (scope, key)
    ) WITHOUT ROWID""",
    """INSERT INTO entry_pending (scope, key)
        SELECT scope, key FROM entries WHERE value IS NOT NULL""",
    # Not INSERT OR IGNORE: an upsert's conflict handling overrides a trigger's.
    f"""CREATE TRIGGER entries_pending AFTER INSERT ON entries WHEN NEW.value IS NOT NULL
    BEGIN
        {_NOTE_PENDING};
    END""",
    f"""CREATE TRIGGER entries_reindex AFTER UPDATE OF value ON entries
    WHEN OLD.value IS NOT NULL OR NEW.value IS NOT NULL
    BEGIN
        DELETE FROM entry_terms WHERE scope = OLD.scope AND key = OLD.key;
        {_NOTE_PENDING} AND NEW.value IS NOT NULL;
    END""",
    """CREATE TRIGGER entries_unindex AFTER DELETE ON entries WHEN OLD.value IS NOT NULL
    BEGIN
        DELETE FROM entry_pending WHERE scope = OLD.scope AND key = OLD.key;
        DELETE FROM entry_terms WHERE scope = OLD.scope AND key = OLD.key;
    END""",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9)
SCHEMA_VERSION = len(MIGRATIONS)

# -- connection set-up -----------------------------------------------------------------

READ_HEADER = """SELECT
    (SELECT application_id FROM pragma_application_id()),
    (SELECT user_version FROM pragma_user_version()),
    (SELECT count(*) FROM sqlite_master)"""
SET_USER_VERSION = "PRAGMA user_version = {version:d}"  # an int we choose, never user input
WAL = "PRAGMA journal_mode = WAL"
SYNCHRONOUS = "PRAGMA synchronous = NORMAL"
FOREIGN_KEYS = "PRAGMA foreign_keys = ON"
BEGIN_READ = "BEGIN"
BEGIN_WRITE = "BEGIN IMMEDIATE"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"


def _insert(table: Table[Any], *more: str) -> str:
    """INSERT of every column of ``table``, then ``more`` columns, all as parameters."""
    columns = ", ".join([*table.names, *more])
    return (
        f"INSERT INTO {table.name} ({columns}) VALUES ({', '.join('?' * (columns.count(',') + 1))})"
    )


# -- agents ----------------------------------------------------------------------------

_AGENT = AGENTS.select()
AGENT_METADATA_BY_NAME = """SELECT id, description, input_schema, output_schema, workflow
    FROM agents WHERE name = ?"""
AGENT_BY_ID = f"SELECT {_AGENT} FROM agents WHERE id = ?"
LIST_AGENTS = f"SELECT {_AGENT} FROM agents ORDER BY name"
NEW_AGENT = """INSERT INTO agents (id, name, description, input_schema, output_schema, workflow,
    created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""
IMPORT_AGENT = _insert(AGENTS)
UPDATE_AGENT = """UPDATE agents SET description = ?, input_schema = ?, output_schema = ?,
    workflow = ?, updated_at = ? WHERE id = ?"""
DELETE_AGENT = "DELETE FROM agents WHERE name = ? RETURNING id"

# -- sessions --------------------------------------------------------------------------

_SESSION = SESSIONS.select()
GET_SESSION = f"SELECT {_SESSION} FROM sessions WHERE id = ?"
SESSION_OWNER = "SELECT agent_id, external_id FROM sessions WHERE id = ?"
# INDEXED BY: the few sessions of one (agent, external_id), sorted, rather than the planner's
# other choice of walking all of the agent's sessions in activity order.
LATEST_SESSION_BY_EXTERNAL_ID = """SELECT id FROM sessions INDEXED BY sessions_by_agent_external
    WHERE agent_id = ? AND external_id = ? ORDER BY updated_at DESC, id DESC LIMIT 1"""
NEW_SESSION = """INSERT INTO sessions (id, agent_id, external_id, created_at, updated_at,
    metadata) VALUES (?, ?, ?, ?, ?, ?)"""
IMPORT_SESSION = _insert(SESSIONS, "last_seq")
TOUCH_SESSION = "UPDATE sessions SET updated_at = ? WHERE id = ?"
# initialize_run of a known session with session_metadata: activity and the new metadata.
TOUCH_SESSION_WITH_METADATA = "UPDATE sessions SET updated_at = ?, metadata = ? WHERE id = ?"
UPDATE_SESSION = f"UPDATE sessions SET metadata = ? WHERE id = ? RETURNING {_SESSION}"
DELETE_SESSION = "DELETE FROM sessions WHERE id = ? RETURNING id"
DELETE_SESSIONS_BY_EXTERNAL_ID = "DELETE FROM sessions WHERE external_id = ? RETURNING id"
SESSION_EXISTS = "SELECT 1 FROM sessions WHERE id = ?"
PURGE_SESSIONS = "DELETE FROM sessions WHERE updated_at < ? RETURNING id"


def _list_sessions(where: str, index: str = "") -> str:
    return f"""SELECT {_SESSION} FROM sessions {index} {where}
    ORDER BY updated_at DESC, id DESC LIMIT ?"""


# list_sessions: one statement per filter combination, so that each one walks an index in
# activity order and stops after ``limit`` rows. Keys: (by workflow name, by external_id,
# after a session). Parameters, in order: workflow name, external_id, id of ``before``,
# limit (-1 for none); a statement takes only those its key says. A workflow name or a
# ``before`` that names nothing compares with NULL, so the page is empty.
_BY_AGENT = "agent_id = (SELECT id FROM agents WHERE name = ?)"
_BY_EXTERNAL = "external_id = ?"
_BOTH = "INDEXED BY sessions_by_agent_external"  # as for LATEST_SESSION_BY_EXTERNAL_ID
# One agent's sessions: walk all sessions in activity order, skipping other agents' (there
# is no per-agent activity index: it would be rewritten on every message).
_ACTIVITY = "INDEXED BY sessions_by_activity"
_AFTER = "(updated_at, id) < (SELECT updated_at, id FROM sessions WHERE id = ?)"
LIST_SESSIONS: dict[tuple[bool, bool, bool], str] = {
    (False, False, False): _list_sessions(""),
    (True, False, False): _list_sessions(f"WHERE {_BY_AGENT}", _ACTIVITY),
    (False, True, False): _list_sessions(f"WHERE {_BY_EXTERNAL}"),
    (True, True, False): _list_sessions(f"WHERE {_BY_AGENT} AND {_BY_EXTERNAL}", _BOTH),
    (False, False, True): _list_sessions(f"WHERE {_AFTER}"),
    (True, False, True): _list_sessions(f"WHERE {_BY_AGENT} AND {_AFTER}", _ACTIVITY),
    (False, True, True): _list_sessions(f"WHERE {_BY_EXTERNAL} AND {_AFTER}"),
    (True, True, True): _list_sessions(f"WHERE {_BY_AGENT} AND {_BY_EXTERNAL} AND {_AFTER}", _BOTH),
}

# -- runs and states -------------------------------------------------------------------

_RUN = RUNS.select()
GET_RUN = f"SELECT {_RUN} FROM runs WHERE id = ?"
RUN_SESSION = "SELECT session_id FROM runs WHERE id = ?"
LIST_RUNS = f"SELECT {_RUN} FROM runs WHERE session_id = ? ORDER BY created_at, id"
NEW_RUN = """INSERT INTO runs (id, session_id, agent_id, input_data, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?)"""
IMPORT_RUN = _insert(RUNS, "state")
UPDATE_RUN = """UPDATE runs SET output_data = coalesce(?, output_data),
    context = coalesce(?, context), duration_seconds = coalesce(?, duration_seconds),
    updated_at = ? WHERE id = ? RETURNING session_id"""
SAVE_STATE = "UPDATE runs SET state = ? WHERE id = ? RETURNING session_id"
LOAD_STATE = "SELECT state FROM runs WHERE id = ?"

# -- chat messages ---------------------------------------------------------------------

# One statement: checks the session's agent and the run, takes the next seq from the
# session's counter and inserts; the trigger bumps the counter and the session's activity.
# As a write statement it holds the write lock from start to end, so seq cannot race.
# Parameters: ?1 session_id, ?2 agent_id, ?3 run_id, ?4 role, ?5 content, ?6 created_at,
# ?7 metadata, ?8 token_count, ?9 idempotency_key. ADD_KEYED_MESSAGE, for a key, inserts
# nothing (and so changes nothing) when the key is stored already: the caller then reads
# the message stored under it. ADD_MESSAGE has no conflict clause. ADD_PLAIN_MESSAGE, the
# hot path, takes only ?1 to ?6 (no metadata, token count or key): the sqlite3 module binds
# a None far more slowly than a string or an int.
_ADD_MESSAGE = """INSERT INTO messages (session_id, seq, run_id, role, content, created_at{0})
    SELECT s.id, s.last_seq + 1, ?3, ?4, ?5, ?6{1} FROM sessions AS s
    WHERE s.id = ?1 AND s.agent_id = ?2
      AND (?3 IS NULL OR EXISTS (SELECT 1 FROM runs AS r WHERE r.id = ?3 AND r.session_id = ?1))
    {2}RETURNING seq"""
_OPTIONS = (", metadata, token_count, idempotency_key", ", ?7, ?8, ?9")
ADD_MESSAGE = _ADD_MESSAGE.format(*_OPTIONS, "")
ADD_KEYED_MESSAGE = _ADD_MESSAGE.format(*_OPTIONS, "ON CONFLICT DO NOTHING\n    ")
ADD_PLAIN_MESSAGE = _ADD_MESSAGE.format("", "", "")
# add_chat_messages (a plain append): as ADD_MESSAGE, for a session of any agent. Parameters:
# ?1 session_id, ?2 run_id, ?3 role, ?4 content, ?5 created_at, ?6 metadata, ?7 token_count.
APPEND_MESSAGE = """INSERT INTO messages (session_id, seq, run_id, role, content, created_at,
        metadata, token_count)
    SELECT s.id, s.last_seq + 1, ?2, ?3, ?4, ?5, ?6, ?7 FROM sessions AS s
    WHERE s.id = ?1
      AND (?2 IS NULL OR EXISTS (SELECT 1 FROM runs AS r WHERE r.id = ?2 AND r.session_id = ?1))
    RETURNING seq"""
# History reads (the hot path) fold metadata and token_count into one column: the sqlite3
# module spends about as much on each column of each row as SQLite does (it lets go of the GIL
# for every value). NULL when both are; the metadata text (a JSON object: "{...}") when only
# it is given; else "<token_count> <metadata text or null>". Reading it parses the metadata
# once, as any other read.
assert CHAT.names[5:] == ("metadata", "token_count")
_HISTORY_COLUMNS = f"""{", ".join(CHAT.names[:5])}, CASE WHEN token_count IS NULL THEN metadata
    ELSE token_count || ' ' || coalesce(metadata, 'null') END"""
HISTORY = f"""SELECT {_HISTORY_COLUMNS} FROM messages WHERE session_id = ?
    ORDER BY seq DESC LIMIT ?"""
HISTORY_EXCLUDING_RUN = f"""SELECT {_HISTORY_COLUMNS} FROM messages
    WHERE session_id = ? AND run_id IS NOT ? ORDER BY seq DESC LIMIT ?"""
# get_chat_history with max_chars and/or max_tokens: walk back from the newest message, one
# index step at a time, while the running totals fit, so that a budget reads its window and
# no more (a message without a token_count counts 0; an int64 sum that overflows becomes a
# float, above any budget). Parameters: ?1 session_id, ?2 exclude_run_id, ?3 max_chars, ?4
# max_tokens (each may be NULL: no limit), ?5 limit (-1: none). Newest first.
HISTORY_WITHIN = f"""WITH RECURSIVE walk (seq, chars, tokens, n) AS (
        SELECT {2**63 - 1}, 0, 0, 0
        UNION ALL
        SELECT m.seq, walk.chars + coalesce(length(m.content), 0),
            walk.tokens + coalesce(m.token_count, 0), walk.n + 1
        FROM walk JOIN messages AS m ON m.session_id = ?1 AND m.seq = (
            SELECT seq FROM messages WHERE session_id = ?1 AND seq < walk.seq
                AND (?2 IS NULL OR run_id IS NOT ?2) ORDER BY seq DESC LIMIT 1)
        WHERE walk.n != ?5
            AND (?3 IS NULL OR walk.chars + coalesce(length(m.content), 0) <= ?3)
            AND (?4 IS NULL OR walk.tokens + coalesce(m.token_count, 0) <= ?4))
    SELECT {_HISTORY_COLUMNS} FROM messages
    WHERE session_id = ?1 AND seq IN (SELECT seq FROM walk) ORDER BY seq DESC"""
HISTORY_AFTER = f"""SELECT {CHAT.select()} FROM messages WHERE session_id = ? AND seq > ?
    ORDER BY seq LIMIT ?"""
MESSAGE_BY_KEY = f"""SELECT {CHAT.select()} FROM messages
    WHERE session_id = ? AND idempotency_key = ?"""
# A repeated idempotency key in one read: the session's agent, the run's session (what
# _rules.refuse_message needs), then the message stored under the key; no row: none is.
# Parameters: ?1 session_id, ?2 idempotency_key, ?3 run_id.
REPEATED_MESSAGE = f"""SELECT s.agent_id, (SELECT session_id FROM runs WHERE id = ?3),
    {CHAT.select("m.")} FROM sessions AS s
    JOIN messages AS m ON m.session_id = s.id AND m.idempotency_key = ?2 WHERE s.id = ?1"""
POP_MESSAGE = f"""DELETE FROM messages WHERE session_id = ?1
    AND seq = (SELECT max(seq) FROM messages WHERE session_id = ?1) RETURNING {CHAT.select()}"""
TRUNCATE_HISTORY = "DELETE FROM messages WHERE session_id = ? AND seq > ? RETURNING 1"
DROP_HISTORY_THROUGH = "DELETE FROM messages WHERE session_id = ? AND seq <= ? RETURNING 1"
NEWEST_MESSAGE_SEQ = "SELECT coalesce(max(seq), 0) FROM messages WHERE session_id = ?"
# fork_session: the newest seq copied, the new session (with that as its last_seq, so the
# insert trigger leaves it alone), then every copied message in one statement.
NEWEST_SEQ = "SELECT max(seq) FROM messages WHERE session_id = ? AND seq <= ?"
FORK_SESSION = """INSERT INTO sessions (id, agent_id, external_id, created_at, updated_at,
        parent_session_id, forked_from_seq, last_seq, metadata)
    SELECT ?1, agent_id, coalesce(?2, external_id), ?3, ?3, id, ?4, ?4, metadata
    FROM sessions WHERE id = ?5"""
_COPIED = [name for name in MESSAGES.names if name not in ("agent_id", "session_id", "run_id")]
FORK_MESSAGES = """INSERT INTO messages (session_id, run_id, {0})
    SELECT ?1, NULL, {0} FROM messages WHERE session_id = ?2 AND seq <= ?3""".format(
    ", ".join(_COPIED)
)
# A message's agent is its session's: the messages table does not repeat it. Import binds
# every MESSAGES column by number and leaves agent_id's unused.
_EXPORT_MESSAGE = "SELECT {} FROM messages AS m JOIN sessions AS s ON s.id = m.session_id".format(
    ", ".join("s.agent_id" if name == "agent_id" else f"m.{name}" for name in MESSAGES.names)
)
_STORED_MESSAGE = [(n, name) for n, name in enumerate(MESSAGES.names, 1) if name != "agent_id"]
IMPORT_MESSAGE = "INSERT INTO messages ({}) VALUES ({})".format(
    ", ".join(name for _, name in _STORED_MESSAGE), ", ".join(f"?{n}" for n, _ in _STORED_MESSAGE)
)

# -- export: pages in stream order (``_records``), each after the key of the last row read --
# The whole store: every id is non-empty, so a first page starts after ("", ...). Parameters:
# the key of the last row read, then the page size.

EXPORT_AGENTS = f"SELECT {_AGENT} FROM agents WHERE name > ? ORDER BY name LIMIT ?"
EXPORT_SESSIONS = f"SELECT {_SESSION}, last_seq FROM sessions WHERE id > ? ORDER BY id LIMIT ?"
EXPORT_RUNS = f"""SELECT {_RUN}, state FROM runs WHERE (session_id, created_at, id) > (?, ?, ?)
    ORDER BY session_id, created_at, id LIMIT ?"""
EXPORT_MESSAGES = f"""{_EXPORT_MESSAGE} WHERE (m.session_id, m.seq) > (?, ?)
    ORDER BY m.session_id, m.seq LIMIT ?"""
EXPORT_ENTRIES = f"""SELECT {ENTRIES.select()} FROM entries WHERE (scope, key) > (?, ?)
    AND (expires_at IS NULL OR expires_at > ?) ORDER BY scope, key LIMIT ?"""
# One session (its id first) and its agent.
EXPORT_SESSION_AGENT = (
    f"SELECT {_AGENT} FROM agents WHERE id = (SELECT agent_id FROM sessions WHERE id = ?)"
)
EXPORT_SESSION = f"SELECT {_SESSION}, last_seq FROM sessions WHERE id = ?"
EXPORT_SESSION_RUNS = f"""SELECT {_RUN}, state FROM runs
    WHERE session_id = ? AND (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?"""
EXPORT_SESSION_MESSAGES = f"""{_EXPORT_MESSAGE} WHERE m.session_id = ? AND m.seq > ?
    ORDER BY m.seq LIMIT ?"""

# -- import: which of a JSON list of ids (or names, or [scope, key]s) exist already ------

_TAKEN = "SELECT value FROM json_each(?) WHERE value IN (SELECT {column} FROM {table})"
TAKEN_AGENT_IDS = _TAKEN.format(column="id", table="agents")
TAKEN_AGENT_NAMES = _TAKEN.format(column="name", table="agents")
TAKEN_SESSION_IDS = _TAKEN.format(column="id", table="sessions")
TAKEN_RUN_IDS = _TAKEN.format(column="id", table="runs")
# Entries: the live ones of a JSON list of [scope, key]s; parameters: the list, now.
TAKEN_ENTRIES = """SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]')
    FROM json_each(?1) AS j WHERE EXISTS (SELECT 1 FROM entries AS e
    WHERE e.scope = json_extract(j.value, '$[0]') AND e.key = json_extract(j.value, '$[1]')
    AND (e.expires_at IS NULL OR e.expires_at > ?2))"""

# -- entries ---------------------------------------------------------------------------
# Keys compare as UTF-8 bytes (BINARY), which is code point order. A range is always
# ``key >= lower [AND key < upper]``; the statement dicts are keyed by (bounded above, reverse).

_ENTRY = ENTRIES.select()  # scope, key, value, data, tag, version, updated_at, owner, expires_at
_LIVE = "(expires_at IS NULL OR expires_at > ?)"  # the expiry rule; the parameter: now
# Writes first delete the expired entries they touch (DROP_EXPIRED..., same transaction), so
# an expired entry counts as absent: a write to its key starts again at version 1.
DROP_EXPIRED_KEYS = """DELETE FROM entries WHERE scope = ? AND key IN (SELECT value FROM
    json_each(?)) AND expires_at <= ?"""
_REPLACE = """ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, data = excluded.data,
    tag = excluded.tag, version = entries.version + 1, updated_at = excluded.updated_at,
    owner = excluded.owner, expires_at = excluded.expires_at"""
PUT_ENTRY = f"""INSERT INTO entries ({_ENTRY}) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?) {_REPLACE}"""
PUT_ENTRY_IF_ABSENT = f"""INSERT INTO entries ({_ENTRY}) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)
    ON CONFLICT (scope, key) DO NOTHING RETURNING 1"""
# An import writes only keys that have no live entry: it replaces an expired one.
IMPORT_ENTRY = (
    _insert(ENTRIES)
    + " ON CONFLICT (scope, key) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in ENTRIES.names[2:])
)
GET_ENTRY = f"SELECT {_ENTRY} FROM entries WHERE scope = ? AND key = ? AND {_LIVE}"
_RANGE = {False: "scope = ? AND key >= ?", True: "scope = ? AND key >= ? AND key < ?"}
LIST_ENTRIES: dict[tuple[bool, bool], str] = {
    (bounded, reverse): f"""SELECT {_ENTRY} FROM entries WHERE {_RANGE[bounded]} AND {_LIVE}
    ORDER BY key {"DESC" if reverse else "ASC"} LIMIT ?"""
    for bounded in (False, True)
    for reverse in (False, True)
}
DROP_EXPIRED_RANGE: dict[bool, str] = {
    bounded: f"DELETE FROM entries WHERE {_RANGE[bounded]} AND expires_at <= ?"
    for bounded in (False, True)
}
# Keyed by (bounded above, by tags); tags are one JSON array parameter, last.
DELETE_ENTRIES: dict[tuple[bool, bool], str] = {
    (bounded, tagged): f"""DELETE FROM entries WHERE {_RANGE[bounded]}
    {"AND tag IN (SELECT value FROM json_each(?))" if tagged else ""} RETURNING expires_at"""
    for bounded in (False, True)
    for tagged in (False, True)
}
# The length of the longest live key in a range (copies check it first).
LONGEST_KEY: dict[bool, str] = {
    bounded: f"SELECT max(length(key)) FROM entries WHERE {_RANGE[bounded]} AND {_LIVE}"
    for bounded in (False, True)
}
# Parameters: to_scope, to_prefix, length of prefix, now, then the range, then now.
COPY_ENTRIES: dict[bool, str] = {
    bounded: f"""INSERT INTO entries ({_ENTRY})
    SELECT ?, ? || substr(key, ? + 1), value, data, tag, 1, ?, owner, expires_at FROM entries
    WHERE {_RANGE[bounded]} AND {_LIVE} ORDER BY key {_REPLACE} RETURNING 1"""
    for bounded in (False, True)
}

# refresh_entries: the new expiry of the live entries of a JSON array of keys (nothing else
# changes). Parameters: expires_at, scope, keys, now.
REFRESH_ENTRIES = f"""UPDATE entries SET expires_at = ? WHERE scope = ?
    AND key IN (SELECT value FROM json_each(?)) AND {_LIVE} RETURNING 1"""

# The search index of entries: the pending entries of a scope (key, value), indexed by the
# search of the scope, in its write transaction. ADD_ENTRY_TERMS: scope, key, the entry's
# terms (a JSON array).
PENDING_ENTRIES = """SELECT p.key, e.value FROM entry_pending AS p
    JOIN entries AS e ON e.scope = p.scope AND e.key = p.key WHERE p.scope = ?"""
ADD_ENTRY_TERMS = """INSERT OR IGNORE INTO entry_terms (scope, key, term)
    SELECT ?1, ?2, value FROM json_each(?3)"""
CLEAR_PENDING_ENTRIES = "DELETE FROM entry_pending WHERE scope = ?"
# The candidates of a search: live entries of scope ?1 indexed under any of the terms ?2 (a
# JSON array), with lower <= key (?3) < upper (?4, NULL: none), owned by ?5 (NULL: any) at ?6.
# INDEXED BY: the rows of the terms, rather than every row of the scope in key order.
_SEARCH_FILTER = "(e.expires_at IS NULL OR e.expires_at > ?6) AND (?5 IS NULL OR e.owner = ?5)"
SEARCH_ENTRIES = f"""SELECT {ENTRIES.select("e.")}
FROM (SELECT DISTINCT key FROM entry_terms INDEXED BY entry_terms_by_term WHERE scope = ?1
      AND term IN (SELECT value FROM json_each(?2)) AND key >= ?3 AND (?4 IS NULL OR key < ?4)
) AS t
CROSS JOIN entries AS e ON e.scope = ?1 AND e.key = t.key
WHERE {_SEARCH_FILTER}"""
# On a read-only database: the pending entries that SEARCH_ENTRIES's filters allow (its
# parameters, the terms ?2 unused), matched in Python.
SEARCH_PENDING_ENTRIES = f"""SELECT {ENTRIES.select("e.")} FROM entry_pending AS p
CROSS JOIN entries AS e ON e.scope = p.scope AND e.key = p.key
WHERE p.scope = ?1 AND p.key >= ?3 AND (?4 IS NULL OR p.key < ?4)
    AND {_SEARCH_FILTER}"""

# -- lifecycle: erasure, accounting, retention (the rules: _lifecycle) -------------------

# The sessions of an erasure or a pruned batch: a JSON array of ids, bound once as ?1.
_CHOSEN = "(SELECT value FROM json_each(?1))"
SESSIONS_OF_EXTERNAL_ID = "SELECT id FROM sessions WHERE external_id = ?"
IDLE_SESSIONS = """SELECT id FROM sessions INDEXED BY sessions_by_activity
    WHERE updated_at < ? ORDER BY updated_at, id LIMIT ?"""
COUNT_CHOSEN = f"""SELECT coalesce(sum(run_count), 0), coalesce(sum(message_count), 0)
    FROM sessions WHERE id IN {_CHOSEN}"""
DELETE_CHOSEN = f"DELETE FROM sessions WHERE id IN {_CHOSEN}"
# Deletes of entries return each one's expires_at (only live ones are counted). Not an
# expression of it: SQLite 3.40 returns NULL for "expires_at IS NULL OR ..." there.
ERASE_ENTRIES = "DELETE FROM entries WHERE owner = ? RETURNING expires_at"


def _stats(by_external: bool, by_agent: bool) -> str:
    """The sessions' counters (v8), summed: one row read per session counted."""
    columns = ["external_id"] * by_external + ["agent_id"] * by_agent
    where = " AND ".join(["1"] + [f"{name} = ?{n}" for n, name in enumerate(columns, 1)])
    return f"""SELECT count(*), coalesce(sum(run_count), 0), coalesce(sum(message_count), 0),
    coalesce(sum(content_bytes), 0) FROM sessions WHERE {where}"""


# Keyed by (by external_id, by agent_id); parameters: the external_id and/or agent_id given,
# in that order. Entries: keyed by owner; parameters: now[, owner].
STATS: dict[tuple[bool, bool], str] = {
    (by_external, by_agent): _stats(by_external, by_agent)
    for by_external in (False, True)
    for by_agent in (False, True)
}
ENTRY_STATS: dict[bool, str] = {
    by_owner: f"""SELECT count(*), coalesce(sum(length(data)), 0) FROM entries
    WHERE {_LIVE}{" AND owner = ?" if by_owner else ""}"""
    for by_owner in (False, True)
}
# keep_last: a page of sessions, each with the seq of its newest message that goes (NULL:
# none goes). Parameters: after id, keep_last, page size.
PRUNE_CUTOFFS = """SELECT id, (SELECT seq FROM messages WHERE session_id = sessions.id
        ORDER BY seq DESC LIMIT 1 OFFSET ?2)
    FROM sessions WHERE id > ?1 ORDER BY id LIMIT ?3"""
# The oldest messages of a session through seq ?2, at most ?3 (?3 - 1 is the offset).
PRUNE_MESSAGES = """DELETE FROM messages WHERE session_id = ?1 AND seq <= min(?2, coalesce(
    (SELECT seq FROM messages WHERE session_id = ?1 ORDER BY seq LIMIT 1 OFFSET ?3 - 1), ?2))
    RETURNING 1"""
PRUNE_EXPIRED = """DELETE FROM entries WHERE rowid IN (SELECT rowid FROM entries
    INDEXED BY entries_by_expiry WHERE expires_at <= ? LIMIT ?) RETURNING 1"""

# -- search ------------------------------------------------------------------------------

# Indexing the pending messages (in the search's write transaction).
PENDING_MESSAGES = """SELECT p.session_id, p.seq, m.content FROM message_pending AS p
    JOIN messages AS m ON m.session_id = p.session_id AND m.seq = p.seq"""
ADD_TERM = "INSERT OR IGNORE INTO message_terms (session_id, seq, term) VALUES (?, ?, ?)"
CLEAR_PENDING = "DELETE FROM message_pending"
# The candidates of a search: messages indexed under any of the terms (?1, a JSON array),
# of the session ?2 (when given), with the session's agent ?3 and external_id ?4 (NULL:
# any). Rows: the message's CHAT columns, then its session's.
_SEARCH = """SELECT {chat}, {session}
FROM (SELECT DISTINCT session_id, seq FROM message_terms INDEXED BY message_terms_by_term
      WHERE term IN (SELECT value FROM json_each(?1))) AS t
CROSS JOIN messages AS m ON m.session_id = t.session_id AND m.seq = t.seq
CROSS JOIN sessions AS s ON s.id = m.session_id
WHERE (?2 IS NULL OR s.id = ?2) AND (?3 IS NULL OR s.agent_id = ?3)
    AND (?4 IS NULL OR s.external_id = ?4)"""
SEARCH = _SEARCH.format(chat=CHAT.select("m."), session=SESSIONS.select("s."))
# The messages not indexed yet, of the session ?1, agent ?2 and external_id ?3 (NULL: any),
# as SEARCH's rows: what a search on a read-only database matches in Python.
SEARCH_PENDING = """SELECT {chat}, {session}
FROM message_pending AS p
CROSS JOIN messages AS m ON m.session_id = p.session_id AND m.seq = p.seq
CROSS JOIN sessions AS s ON s.id = m.session_id
WHERE (?1 IS NULL OR s.id = ?1) AND (?2 IS NULL OR s.agent_id = ?2)
    AND (?3 IS NULL OR s.external_id = ?3)""".format(
    chat=CHAT.select("m."), session=SESSIONS.select("s.")
)
