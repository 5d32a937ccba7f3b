"""Every PostgreSQL statement of ``PostgresDataStorage``: schema, migrations and queries.

Statements name their tables as ``{s}.table``; ``Statements(schema)`` puts the quoted,
validated schema name there once. Column lists come from the descriptions in ``_columns``,
and a statement has the name of its SQLite counterpart in ``_sqlite_sql``. Nothing else is
ever formatted into SQL: every value is a bind parameter. Ids, names and external ids use
``COLLATE "C"`` so ordering is by code point (as in the in-memory store) whatever the
database's locale.
"""

from __future__ import annotations

import re
from typing import Any

from ._columns import AGENTS, CHAT, ENTRIES, MESSAGES, RUNS, SESSIONS, Kind, Table
from .errors import InvalidDataError

# SQLSTATEs raised by the ``initialize_run`` function; message = field, detail = problem.
INVALID_DATA = "RSINV"

_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def quote_schema(name: str) -> str:
    """The schema name as a quoted identifier, after checking it is a plain identifier."""
    if not isinstance(name, str) or not _SCHEMA_NAME.fullmatch(name):
        raise InvalidDataError(
            "schema", "must be 1-63 characters: letters, digits or _, not starting with a digit"
        )
    return f'"{name}"'


# -- migrations ----------------------------------------------------------------

# Taken (per schema, hashed) around every migration, so concurrent first uses by several
# processes apply each migration once.
MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('runstore.migrate:' || $1, 0))"

MIGRATIONS_TABLE = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.runstore_migrations (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""

APPLIED_VERSION = "SELECT coalesce(max(version), 0) FROM {s}.runstore_migrations"

RECORD_MIGRATION = "INSERT INTO {s}.runstore_migrations (version) VALUES ($1)"

_V1_TABLES = """
CREATE TABLE {s}.agents (
    id text COLLATE "C" PRIMARY KEY,
    name text COLLATE "C" NOT NULL UNIQUE,
    description text,
    input_schema jsonb,
    output_schema jsonb,
    workflow jsonb,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE {s}.sessions (
    id text COLLATE "C" PRIMARY KEY,
    agent_id text COLLATE "C" NOT NULL REFERENCES {s}.agents (id) ON DELETE CASCADE,
    external_id text COLLATE "C",
    last_seq bigint NOT NULL DEFAULT 0,  -- seq of the newest message
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL      -- last activity
);
CREATE INDEX sessions_by_activity ON {s}.sessions (updated_at, id);
CREATE INDEX sessions_by_agent ON {s}.sessions (agent_id, updated_at, id);
CREATE INDEX sessions_by_external_id ON {s}.sessions (external_id, updated_at, id)
    WHERE external_id IS NOT NULL;

CREATE TABLE {s}.runs (
    id text COLLATE "C" PRIMARY KEY,
    session_id text COLLATE "C" NOT NULL REFERENCES {s}.sessions (id) ON DELETE CASCADE,
    agent_id text COLLATE "C" NOT NULL,  -- always the session's agent
    input_data jsonb,
    output_data jsonb,
    context jsonb,
    duration_seconds double precision,
    state jsonb,                         -- the WorkflowState (TOASTed apart from the row)
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (session_id, id)
);

-- run_id has no foreign key: runs go only with their session (whose cascade takes the
-- messages), and add_chat_message checks the run in the statement that inserts.
CREATE TABLE {s}.chat_messages (
    session_id text COLLATE "C" NOT NULL REFERENCES {s}.sessions (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    agent_id text COLLATE "C" NOT NULL,
    run_id text COLLATE "C",
    role text NOT NULL,
    content text,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (session_id, seq)
);
"""

# One round trip, race-free: each statement of a PL/pgSQL function sees what committed
# before it, the agent is created with ON CONFLICT, a pinned session id with ON CONFLICT,
# and the reuse-by-external-id lookup is serialised per (agent, external id) by a
# transaction advisory lock. A refusal raises, which rolls back everything (even a new agent).
_V1_INITIALIZE_RUN = """
CREATE FUNCTION {s}.runstore_initialize_run(
    p_name text, p_description text, p_input_schema jsonb, p_output_schema jsonb,
    p_workflow jsonb, p_session_id text, p_external_id text, p_input_data jsonb,
    p_now timestamptz, p_new_agent_id text, p_new_session_id text, p_new_run_id text,
    OUT out_agent_id text, OUT out_session_id text
) LANGUAGE plpgsql AS $fn$
DECLARE
    v_agent text;
    v_external text;
BEGIN
    SELECT a.id INTO out_agent_id FROM {s}.agents a WHERE a.name = p_name;
    IF out_agent_id IS NULL THEN
        INSERT INTO {s}.agents AS a (id, name, description, input_schema, output_schema,
                                     workflow, created_at, updated_at)
        VALUES (p_new_agent_id, p_name, p_description, p_input_schema, p_output_schema,
                p_workflow, p_now, p_now)
        ON CONFLICT (name) DO NOTHING
        RETURNING a.id INTO out_agent_id;
        IF out_agent_id IS NULL THEN  -- another transaction created it just now
            SELECT a.id INTO STRICT out_agent_id FROM {s}.agents a WHERE a.name = p_name;
        END IF;
    END IF;
    IF p_description IS NOT NULL OR p_input_schema IS NOT NULL
       OR p_output_schema IS NOT NULL OR p_workflow IS NOT NULL THEN
        UPDATE {s}.agents a SET
            description = coalesce(p_description, a.description),
            input_schema = coalesce(p_input_schema, a.input_schema),
            output_schema = coalesce(p_output_schema, a.output_schema),
            workflow = coalesce(p_workflow, a.workflow),
            updated_at = p_now
        WHERE a.id = out_agent_id AND (
            (p_description IS NOT NULL AND p_description IS DISTINCT FROM a.description)
            OR (p_input_schema IS NOT NULL
                AND p_input_schema::text IS DISTINCT FROM a.input_schema::text)
            OR (p_output_schema IS NOT NULL
                AND p_output_schema::text IS DISTINCT FROM a.output_schema::text)
            OR (p_workflow IS NOT NULL AND p_workflow::text IS DISTINCT FROM a.workflow::text));
    END IF;

    IF p_session_id IS NOT NULL THEN
        LOOP
            UPDATE {s}.sessions s SET updated_at = greatest(s.updated_at, p_now)
            WHERE s.id = p_session_id
            RETURNING s.agent_id, s.external_id INTO v_agent, v_external;
            IF FOUND THEN
                IF v_agent <> out_agent_id THEN
                    RAISE EXCEPTION USING ERRCODE = 'RSINV', MESSAGE = 'session_id',
                        DETAIL = 'belongs to another agent';
                END IF;
                IF p_external_id IS NOT NULL AND p_external_id IS DISTINCT FROM v_external THEN
                    RAISE EXCEPTION USING ERRCODE = 'RSINV', MESSAGE = 'external_id',
                        DETAIL = 'differs from the session''s external_id';
                END IF;
                EXIT;
            END IF;
            INSERT INTO {s}.sessions (id, agent_id, external_id, created_at, updated_at)
            VALUES (p_session_id, out_agent_id, p_external_id, p_now, p_now)
            ON CONFLICT (id) DO NOTHING;
            EXIT WHEN FOUND;  -- else it was created meanwhile: check it as above
        END LOOP;
        out_session_id := p_session_id;
    ELSE
        IF p_external_id IS NOT NULL THEN
            PERFORM pg_advisory_xact_lock(hashtext(out_agent_id), hashtext(p_external_id));
            UPDATE {s}.sessions s SET updated_at = greatest(s.updated_at, p_now)
            WHERE s.id = (
                SELECT x.id FROM {s}.sessions x
                WHERE x.external_id = p_external_id AND x.agent_id = out_agent_id
                ORDER BY x.updated_at DESC, x.id DESC LIMIT 1)
            RETURNING s.id INTO out_session_id;
        END IF;
        IF out_session_id IS NULL THEN
            out_session_id := p_new_session_id;
            INSERT INTO {s}.sessions (id, agent_id, external_id, created_at, updated_at)
            VALUES (out_session_id, out_agent_id, p_external_id, p_now, p_now);
        END IF;
    END IF;

    INSERT INTO {s}.runs (id, session_id, agent_id, input_data, created_at, updated_at)
    VALUES (p_new_run_id, out_session_id, out_agent_id, p_input_data, p_now, p_now);
END
$fn$;
"""
# v12: add_chat_messages as one function call (a plain append, the adapters' hot path): the
# session's row takes all the seqs at once and the messages go in with one INSERT. Arrays, one
# element per message; terms joined by spaces (NULL: none). out_last_seq is NULL when the
# session is missing or a run is not the session's: nothing is written, and the caller's
# general path finds out which.
_V12_APPEND_MESSAGES = """
CREATE FUNCTION {s}.runstore_append_messages(
    p_session_id text, p_run_ids text[], p_roles text[], p_contents text[], p_now timestamptz,
    p_metadata text[], p_token_counts bigint[], p_terms text[], OUT out_last_seq bigint
) LANGUAGE plpgsql AS $fn$
DECLARE
    v_agent_id text;
    v_count bigint := cardinality(p_roles);
BEGIN
    UPDATE {s}.sessions s SET last_seq = s.last_seq + v_count,
        updated_at = greatest(s.updated_at, p_now), message_count = s.message_count + v_count,
        content_bytes = s.content_bytes
            + (SELECT coalesce(sum(octet_length(c)), 0) FROM unnest(p_contents) AS c)
    WHERE s.id = p_session_id
      AND NOT EXISTS (SELECT 1 FROM unnest(p_run_ids) AS given (id)
                      WHERE given.id IS NOT NULL AND NOT EXISTS (
                          SELECT 1 FROM {s}.runs r
                          WHERE r.id = given.id AND r.session_id = p_session_id))
    RETURNING s.agent_id, s.last_seq INTO v_agent_id, out_last_seq;
    IF out_last_seq IS NOT NULL THEN
        INSERT INTO {s}.messages (session_id, seq, agent_id, run_id, role, content, created_at,
                                  metadata, token_count, terms)
        SELECT p_session_id, out_last_seq - v_count + m.n, v_agent_id, m.run_id, m.role,
               m.content, p_now, m.metadata::jsonb, m.token_count, string_to_array(m.terms, ' ')
        FROM unnest(p_run_ids, p_roles, p_contents, p_metadata, p_token_counts, p_terms)
            WITH ORDINALITY AS m (run_id, role, content, metadata, token_count, terms, n);
    END IF;
END
$fn$;
"""

# (version, SQL): append only; a released migration is never edited.
# v2: the messages table has the same name as in SQLite.
_V2_RENAME_MESSAGES = """
ALTER TABLE {s}.chat_messages RENAME TO messages;
ALTER INDEX {s}.chat_messages_pkey RENAME TO messages_pkey;
"""

# v3: messages v2 (metadata, token_count, idempotency_key unique per session where given)
# and forks. sessions.last_seq becomes the high-water mark: undo never lowers it.
_V3_MESSAGES_V2 = """
ALTER TABLE {s}.messages ADD COLUMN metadata jsonb, ADD COLUMN token_count bigint,
    ADD COLUMN idempotency_key text COLLATE "C";
CREATE UNIQUE INDEX messages_by_key ON {s}.messages (session_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
ALTER TABLE {s}.sessions ADD COLUMN parent_session_id text COLLATE "C",
    ADD COLUMN forked_from_seq bigint;
"""

# v4: entries, the ordered key-value store (docs/contract.md, "Entries"). Keys are
# COLLATE "C" so they sort by code point, as on every backend.
_V4_ENTRIES = """
CREATE TABLE {s}.entries (
    scope text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    value jsonb,
    data bytea,
    tag text COLLATE "C",
    version bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX entries_by_tag ON {s}.entries (scope, tag) WHERE tag IS NOT NULL;
"""

# v5: a user's data over its life (docs/contract.md, "Erasure", "Retention"): entries name
# their owner (a session's external_id) and may expire; both indexed where given.
_V5_LIFECYCLE = """
ALTER TABLE {s}.entries ADD COLUMN owner text COLLATE "C", ADD COLUMN expires_at timestamptz;
CREATE INDEX entries_by_owner ON {s}.entries (owner) WHERE owner IS NOT NULL;
CREATE INDEX entries_by_expiry ON {s}.entries (expires_at) WHERE expires_at IS NOT NULL;
"""

# v6: the search index (docs/contract.md, "Search"): each message's terms
# (``_search.index_terms``, computed by runstore on every insert; NULL: none) in a GIN
# index. The terms of the messages stored before are filled in on migration
# (``SEARCH_BACKFILL_READ``/``_WRITE``).
_V6_SEARCH = """
ALTER TABLE {s}.messages ADD COLUMN terms text[];
CREATE INDEX messages_by_term ON {s}.messages USING gin (terms);
"""
SEARCH_VERSION = 6
SEARCH_BACKFILL_READ = (
    "SELECT session_id, seq, content FROM {s}.messages WHERE content IS NOT NULL AND terms IS NULL"
)
SEARCH_BACKFILL_WRITE = "UPDATE {s}.messages SET terms = $3 WHERE session_id = $1 AND seq = $2"

# v7: session metadata (docs/contract.md, "Session metadata"): a JSON object, '{}' when none
# was set. ``initialize_run`` with metadata calls an overload with one more argument, which
# runs the function of v1 and then sets the metadata on the run's session; without metadata
# the v1 function is called as before (and a process of an older runstore still works).
_V7_SESSION_METADATA = """
ALTER TABLE {s}.sessions ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb;
CREATE FUNCTION {s}.runstore_initialize_run(
    p_name text, p_description text, p_input_schema jsonb, p_output_schema jsonb,
    p_workflow jsonb, p_session_id text, p_external_id text, p_input_data jsonb,
    p_now timestamptz, p_new_agent_id text, p_new_session_id text, p_new_run_id text,
    p_session_metadata jsonb, OUT out_agent_id text, OUT out_session_id text
) LANGUAGE plpgsql AS $fn$
BEGIN
    SELECT r.out_agent_id, r.out_session_id INTO out_agent_id, out_session_id
    FROM {s}.runstore_initialize_run(p_name, p_description, p_input_schema, p_output_schema,
        p_workflow, p_session_id, p_external_id, p_input_data, p_now, p_new_agent_id,
        p_new_session_id, p_new_run_id) r;
    IF p_session_metadata IS NOT NULL THEN
        UPDATE {s}.sessions s SET metadata = p_session_metadata WHERE s.id = out_session_id;
    END IF;
END
$fn$;
"""

# v8: accounting from counters (docs/contract.md, "Accounting"): each session keeps how many
# runs and messages it holds and its messages' content bytes, so that stats reads sessions,
# not messages. Every statement that inserts or deletes messages updates them in the same
# statement (runstore_add_message of v9, POP_MESSAGE, _REMOVE_MESSAGES, FORK_SESSION,
# PRUNE_MESSAGES; an import after its COPY: COUNT_IMPORTED); a run's insert bumps run_count
# by a trigger (the v1 function inserts runs). Counters of the stored rows are filled in.
_V8_COUNTERS = """
ALTER TABLE {s}.sessions ADD COLUMN run_count bigint NOT NULL DEFAULT 0,
    ADD COLUMN message_count bigint NOT NULL DEFAULT 0,
    ADD COLUMN content_bytes bigint NOT NULL DEFAULT 0;
UPDATE {s}.sessions s SET message_count = m.n, content_bytes = m.bytes
FROM (SELECT session_id, count(*) AS n, coalesce(sum(octet_length(content)), 0) AS bytes
      FROM {s}.messages GROUP BY session_id) m
WHERE s.id = m.session_id;
UPDATE {s}.sessions s SET run_count = r.n
FROM (SELECT session_id, count(*) AS n FROM {s}.runs GROUP BY session_id) r
WHERE s.id = r.session_id;
CREATE FUNCTION {s}.runstore_count_run() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE {s}.sessions SET run_count = run_count + 1 WHERE id = NEW.session_id;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER runs_count AFTER INSERT ON {s}.runs
    FOR EACH ROW EXECUTE FUNCTION {s}.runstore_count_run();
"""

# v9: add_chat_message as a function (ADD_MESSAGE calls it; v8's counters included). Behind
# a transaction pooler every statement is sent unnamed, so the server parses and plans it on
# every call (asyncpg's named statements are planned once per connection); a PL/pgSQL
# function keeps the plans of its statements for the life of the server connection,
# whichever client sends the call, so what is parsed per call is only the SELECT of the
# function (measured: the server's CPU per add behind PgBouncer about halved; straight to the
# server about the same). A history read is a plain SELECT: as a function it cost as much.
_V9_ADD_MESSAGE = """
CREATE FUNCTION {s}.runstore_add_message(
    p_agent_id text, p_session_id text, p_run_id text, p_role text, p_content text,
    p_now timestamptz, p_metadata jsonb, p_token_count bigint, p_key text, p_terms text[],
    OUT out_seq bigint, OUT out_session_agent text, OUT out_run_session text
) LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE {s}.sessions s SET last_seq = s.last_seq + 1,
        updated_at = greatest(s.updated_at, p_now), message_count = s.message_count + 1,
        content_bytes = s.content_bytes + coalesce(octet_length(p_content), 0)
    WHERE s.id = p_session_id AND s.agent_id = p_agent_id
      AND (p_run_id IS NULL
           OR EXISTS (SELECT 1 FROM {s}.runs r WHERE r.id = p_run_id
                      AND r.session_id = p_session_id))
    RETURNING s.last_seq INTO out_seq;
    IF out_seq IS NOT NULL THEN
        INSERT INTO {s}.messages (session_id, seq, agent_id, run_id, role, content, created_at,
                                  metadata, token_count, idempotency_key, terms)
        VALUES (p_session_id, out_seq, p_agent_id, p_run_id, p_role, p_content, p_now,
                p_metadata, p_token_count, p_key, p_terms);
    ELSE
        SELECT s.agent_id INTO out_session_agent FROM {s}.sessions s WHERE s.id = p_session_id;
        SELECT r.session_id INTO out_run_session FROM {s}.runs r WHERE r.id = p_run_id;
    END IF;
END
$fn$;
"""
# v10: the search index of entries (docs/contract.md, "Search"): each entry's terms
# (``_search.entry_terms``, computed by runstore on every write; NULL: none) in a GIN index.
# A merge, computed here, adds the patch's terms to the entry's (words it replaced may stay
# until the next put: more candidates, never a wrong match). The entries stored before are
# indexed on migration (``ENTRY_SEARCH_BACKFILL_READ``/``_WRITE``).
_V10_ENTRY_SEARCH = """
ALTER TABLE {s}.entries ADD COLUMN terms text[];
CREATE INDEX entries_by_term ON {s}.entries USING gin (terms);
"""
ENTRY_SEARCH_VERSION = 10
ENTRY_SEARCH_BACKFILL_READ = (
    "SELECT scope, key, value::text FROM {s}.entries WHERE value IS NOT NULL AND terms IS NULL"
)
ENTRY_SEARCH_BACKFILL_WRITE = "UPDATE {s}.entries SET terms = $3 WHERE scope = $1 AND key = $2"
# v11: GIN keeps new terms in a pending list that every search reads whole, up to
# gin_pending_list_limit (4 MB by default) before it is merged into the index: a search of
# entries just written read 10,000 entries' terms (15 ms for 100 matches at 10,000 entries,
# 105 ms at 100,000). 256 kB keeps that read short; the merges it adds cost writes little.
_V11_SHORT_PENDING_LISTS = """
ALTER INDEX {s}.messages_by_term SET (gin_pending_list_limit = 256);
ALTER INDEX {s}.entries_by_term SET (gin_pending_list_limit = 256);
"""

# (version, SQL): append only; a released migration is never edited.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, _V1_TABLES + _V1_INITIALIZE_RUN),
    (2, _V2_RENAME_MESSAGES),
    (3, _V3_MESSAGES_V2),
    (4, _V4_ENTRIES),
    (5, _V5_LIFECYCLE),
    (SEARCH_VERSION, _V6_SEARCH),
    (7, _V7_SESSION_METADATA),
    (8, _V8_COUNTERS),
    (9, _V9_ADD_MESSAGE),
    (ENTRY_SEARCH_VERSION, _V10_ENTRY_SEARCH),
    (11, _V11_SHORT_PENDING_LISTS),
    (12, _V12_APPEND_MESSAGES),
)

_CAST: dict[Kind, str] = {"json": "::jsonb"}


def _insert(table: Table[Any], *more: tuple[str, Kind]) -> str:
    """INSERT of every column of ``table``, then ``more`` columns, all as parameters."""
    columns = [*table.columns, *more]
    names = ", ".join(name for name, _ in columns)
    values = ", ".join(f"${n}{_CAST.get(kind, '')}" for n, (_, kind) in enumerate(columns, 1))
    return f"INSERT INTO {{s}}.{table.name} ({names}) VALUES ({values})"


# -- agents -----------------------------------------------------------------------

_AGENT = AGENTS.select()
LIST_AGENTS = f"SELECT {_AGENT} FROM {{s}}.agents ORDER BY name"
IMPORT_AGENT = _insert(AGENTS)
DELETE_AGENT = "DELETE FROM {s}.agents WHERE name = $1 RETURNING 1"

# -- sessions ---------------------------------------------------------------------

_SESSION = SESSIONS.select("s.")
GET_SESSION = f"SELECT {_SESSION} FROM {{s}}.sessions s WHERE s.id = $1"
IMPORT_SESSION = _insert(SESSIONS, ("last_seq", "int"))
UPDATE_SESSION = f"""UPDATE {{s}}.sessions s SET metadata = $2::jsonb WHERE s.id = $1
    RETURNING {_SESSION}"""
DELETE_SESSION = "DELETE FROM {s}.sessions WHERE id = $1 RETURNING 1"
DELETE_SESSIONS = (
    "WITH gone AS (DELETE FROM {s}.sessions WHERE external_id = $1 RETURNING 1)"
    " SELECT count(*) FROM gone"
)
PURGE_SESSIONS = (
    "WITH gone AS (DELETE FROM {s}.sessions WHERE updated_at < $1 RETURNING 1)"
    " SELECT count(*) FROM gone"
)


def _list_sessions(by_agent: bool, by_external_id: bool, after: bool) -> str:
    """One fixed statement per filter combination, so each can use its index. Parameters:
    $1 limit, then the workflow name, the external id and the ``before`` id that are given."""
    where = []
    number = 1
    if by_agent:
        number += 1
        where.append(f"s.agent_id = (SELECT a.id FROM {{s}}.agents a WHERE a.name = ${number})")
    if by_external_id:
        number += 1
        where.append(f"s.external_id = ${number}")
    if after:
        number += 1
        where.append(
            "(s.updated_at, s.id)"
            f" < (SELECT b.updated_at, b.id FROM {{s}}.sessions b WHERE b.id = ${number})"
        )
    return (
        f"SELECT {_SESSION} FROM {{s}}.sessions s"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY s.updated_at DESC, s.id DESC LIMIT $1"
    )


# Keyed by (workflow_name given, external_id given, before given).
LIST_SESSIONS: dict[tuple[bool, bool, bool], str] = {
    (a, e, b): _list_sessions(a, e, b)
    for a in (False, True)
    for e in (False, True)
    for b in (False, True)
}

# -- runs and states --------------------------------------------------------------

INITIALIZE_RUN = (
    "SELECT out_agent_id, out_session_id"
    " FROM {s}.runstore_initialize_run($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6, $7, $8::jsonb,"
    " $9, $10, $11, $12)"
)
# With session_metadata ($13): the overload of migration 7 (one nested call more).
INITIALIZE_RUN_WITH_METADATA = INITIALIZE_RUN.replace("$12)", "$12, $13::jsonb)")

UPDATE_RUN = """
WITH run AS (
    UPDATE {s}.runs SET
        output_data = coalesce($2::jsonb, output_data),
        context = coalesce($3::jsonb, context),
        duration_seconds = coalesce($4::float8, duration_seconds),
        updated_at = $5
    WHERE id = $1
    RETURNING session_id
)
UPDATE {s}.sessions s SET updated_at = greatest(s.updated_at, $5)
FROM run WHERE s.id = run.session_id
RETURNING 1
"""

_RUN = RUNS.select()
GET_RUN = f"SELECT {_RUN} FROM {{s}}.runs WHERE id = $1"
LIST_RUNS = f"SELECT {_RUN} FROM {{s}}.runs WHERE session_id = $1 ORDER BY created_at, id"
IMPORT_RUN = _insert(RUNS, ("state", "json"))

SAVE_STATE = """
WITH run AS (UPDATE {s}.runs SET state = $2::jsonb WHERE id = $1 RETURNING session_id)
UPDATE {s}.sessions s SET updated_at = greatest(s.updated_at, $3)
FROM run WHERE s.id = run.session_id
RETURNING 1
"""

LOAD_STATE = "SELECT state FROM {s}.runs WHERE id = $1"
EXPORT_RUNS = f"SELECT {_RUN}, state FROM {{s}}.runs ORDER BY created_at, id"
EXPORT_SESSION_RUNS = (
    f"SELECT {_RUN}, state FROM {{s}}.runs WHERE session_id = $1 ORDER BY created_at, id"
)

# -- chat messages ----------------------------------------------------------------

# One statement, a call of runstore_add_message (migration 9): the seq comes from the session
# row's counter, bumped under its row lock, so concurrent appends (any number of processes)
# get distinct, increasing seqs. When nothing is inserted, the last two columns are what
# _rules.refuse_message needs: the session's agent and the run's session. $7 metadata, $8
# token_count, $9 idempotency_key: a keyed add runs it after REPEATED_MESSAGE found none; the
# unique index messages_by_key refuses a second message with the key that a concurrent add
# stored first (the whole call fails: no seq taken). $10 the search terms.
ADD_MESSAGE = """SELECT out_seq, out_session_agent, out_run_session
FROM {s}.runstore_add_message($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10::text[])"""
# add_chat_messages, a plain append: $1 session_id, $2 run_ids, $3 roles, $4 contents, $5 now,
# $6 metadata (JSON text), $7 token counts, $8 terms (each message's joined by spaces).
APPEND_MESSAGES = """SELECT {s}.runstore_append_messages($1, $2::text[], $3::text[], $4::text[],
    $5, $6::text[], $7::bigint[], $8::text[])"""

# Newest first (the caller reverses); LIMIT NULL means no limit.
HISTORY = (
    f"SELECT {CHAT.select()} FROM {{s}}.messages WHERE session_id = $1 ORDER BY seq DESC LIMIT $2"
)
HISTORY_EXCLUDING_RUN = (
    f"SELECT {CHAT.select()} FROM {{s}}.messages"
    " WHERE session_id = $1 AND run_id IS DISTINCT FROM $3 ORDER BY seq DESC LIMIT $2"
)
# get_chat_history with max_chars and/or max_tokens: walk back from the newest message, one
# index step at a time, while the running totals (numeric: they cannot overflow) fit. $1
# session_id, $2 exclude_run_id, $3 max_chars, $4 max_tokens, $5 limit (each NULL: none).
# Newest first.
HISTORY_WITHIN = f"""WITH RECURSIVE walk (seq, chars, tokens, n) AS (
    SELECT {2**63 - 1}::bigint, 0::numeric, 0::numeric, 0::bigint
  UNION ALL
    SELECT m.seq, walk.chars + coalesce(char_length(m.content), 0),
        walk.tokens + coalesce(m.token_count, 0), walk.n + 1
    FROM walk CROSS JOIN LATERAL (
        SELECT seq, content, token_count FROM {{s}}.messages
        WHERE session_id = $1 AND seq < walk.seq
            AND ($2::text IS NULL OR run_id IS DISTINCT FROM $2::text)
        ORDER BY seq DESC LIMIT 1) AS m
    WHERE ($5::bigint IS NULL OR walk.n < $5)
        AND ($3::bigint IS NULL OR walk.chars + coalesce(char_length(m.content), 0) <= $3)
        AND ($4::bigint IS NULL OR walk.tokens + coalesce(m.token_count, 0) <= $4))
SELECT {CHAT.select()} FROM {{s}}.messages
WHERE session_id = $1 AND seq IN (SELECT seq FROM walk) ORDER BY seq DESC"""
# Oldest first, after a seq; LIMIT NULL means no limit.
HISTORY_AFTER = (
    f"SELECT {CHAT.select()} FROM {{s}}.messages WHERE session_id = $1 AND seq > $2"
    " ORDER BY seq LIMIT $3"
)
# Serialises the pops and truncations of one session (until commit).
LOCK_SESSION = "SELECT 1 FROM {s}.sessions WHERE id = $1 FOR UPDATE"

# replace_history: the session's agent under its row lock, and its newest message's seq.
LOCK_SESSION_AGENT = "SELECT agent_id FROM {s}.sessions WHERE id = $1 FOR UPDATE"
NEWEST_MESSAGE_SEQ = "SELECT coalesce(max(seq), 0) FROM {s}.messages WHERE session_id = $1"
# A repeated idempotency key in one read: the session's agent, the run's session (what
# _rules.refuse_message needs), then the message stored under the key; no row: none is.
# The last column takes a transaction id only when a message is found, so that the read
# commits, and with synchronous replication waits for the standby: a message that a crashed
# and restarted primary recovered but never replicated is not acknowledged as stored (a
# failover would lose it).
REPEATED_MESSAGE = f"""SELECT s.agent_id, (SELECT session_id FROM {{s}}.runs WHERE id = $3),
    {CHAT.select("m.")}, pg_current_xact_id() FROM {{s}}.sessions s
    JOIN {{s}}.messages m ON m.session_id = s.id AND m.idempotency_key = $2 WHERE s.id = $1"""
# For a refused add: the session's agent and the run's session (NULL: none).
MESSAGE_OWNERS = (
    "SELECT (SELECT agent_id FROM {s}.sessions WHERE id = $1),"
    " (SELECT session_id FROM {s}.runs WHERE id = $2)"
)
POP_MESSAGE = f"""
WITH popped AS (
    DELETE FROM {{s}}.messages WHERE session_id = $1
        AND seq = (SELECT max(seq) FROM {{s}}.messages WHERE session_id = $1)
    RETURNING {CHAT.select()}
), touched AS (
    UPDATE {{s}}.sessions s SET updated_at = greatest(s.updated_at, $2),
        message_count = s.message_count - 1,
        content_bytes = s.content_bytes - (SELECT coalesce(octet_length(content), 0) FROM popped)
    WHERE s.id = $1 AND EXISTS (SELECT FROM popped)
)
SELECT {CHAT.select()} FROM popped
"""
# Removes the messages above $2 (TRUNCATE_HISTORY) or up to $2 (DROP_HISTORY_THROUGH), and
# touches the session if any went; returns how many.
_REMOVE_MESSAGES = """
WITH gone AS (
    DELETE FROM {{s}}.messages WHERE session_id = $1 AND seq {compare} $2
    RETURNING coalesce(octet_length(content), 0) AS bytes
), touched AS (
    UPDATE {{s}}.sessions s SET updated_at = greatest(s.updated_at, $3),
        message_count = s.message_count - (SELECT count(*) FROM gone),
        content_bytes = s.content_bytes - (SELECT sum(bytes) FROM gone)
    WHERE s.id = $1 AND EXISTS (SELECT FROM gone)
)
SELECT count(*) FROM gone
"""
TRUNCATE_HISTORY = _REMOVE_MESSAGES.format(compare=">")
DROP_HISTORY_THROUGH = _REMOVE_MESSAGES.format(compare="<=")
# One statement: the new session, then its messages copied by one INSERT ... SELECT (the
# foreign key is checked at the end of the statement, when the session exists). Returns
# the parent's agent (NULL: no parent), the fork's id (NULL: new id taken), its
# external_id, forked_from_seq and metadata (the parent's).
_COPIED = [name for name in MESSAGES.names if name not in ("session_id", "run_id")] + ["terms"]
FORK_SESSION = """
WITH parent AS (
    SELECT id, agent_id, external_id, metadata FROM {{s}}.sessions WHERE id = $1
), newest AS (
    SELECT coalesce(max(seq), 0) AS seq, count(*) AS n,
        coalesce(sum(octet_length(content)), 0) AS bytes
    FROM {{s}}.messages WHERE session_id = $1 AND seq <= $2
), fork AS (
    INSERT INTO {{s}}.sessions (id, agent_id, external_id, last_seq, created_at, updated_at,
                                parent_session_id, forked_from_seq, metadata, message_count,
                                content_bytes)
    SELECT $3, p.agent_id, coalesce($4, p.external_id), n.seq, $5, $5, p.id, n.seq, p.metadata,
        n.n, n.bytes
    FROM parent p, newest n
    ON CONFLICT (id) DO NOTHING
    RETURNING id, external_id, forked_from_seq, metadata
), copied AS (
    INSERT INTO {{s}}.messages (session_id, run_id, {copied})
    SELECT f.id, NULL, {from_parent}
    FROM fork f JOIN {{s}}.messages m ON m.session_id = $1 AND m.seq <= f.forked_from_seq
)
SELECT (SELECT agent_id FROM parent), (SELECT id FROM fork), (SELECT external_id FROM fork),
       (SELECT forked_from_seq FROM fork), (SELECT metadata FROM fork)
""".format(copied=", ".join(_COPIED), from_parent=", ".join(f"m.{name}" for name in _COPIED))
# An import COPYs messages (asyncpg's copy_records_to_table, the columns of MESSAGES), then
# adds to each session's counters what it copied: $1 session ids, $2 messages, $3 bytes.
COUNT_IMPORTED = """UPDATE {s}.sessions s SET message_count = s.message_count + u.n,
    content_bytes = s.content_bytes + u.bytes
FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS u (id, n, bytes) WHERE s.id = u.id"""

# -- export: pages in stream order (``_records``), each after the key of the last row read --
# The whole store: every id is non-empty, so a first page starts after ("", ...). Parameters:
# the key of the last row read, then the page size. Runs: the index on (session_id, id)
# gives the session order, an incremental sort the rest.

_MESSAGE = MESSAGES.select()
EXPORT_AGENTS = f"SELECT {_AGENT} FROM {{s}}.agents WHERE name > $1 ORDER BY name LIMIT $2"
EXPORT_SESSIONS = f"""SELECT {_SESSION}, s.last_seq FROM {{s}}.sessions s WHERE s.id > $1
    ORDER BY s.id LIMIT $2"""
EXPORT_RUNS = f"""SELECT {_RUN}, state FROM {{s}}.runs
    WHERE session_id >= $1 AND (session_id, created_at, id) > ($1, $2, $3)
    ORDER BY session_id, created_at, id LIMIT $4"""
EXPORT_MESSAGES = f"""SELECT {_MESSAGE} FROM {{s}}.messages WHERE (session_id, seq) > ($1, $2)
    ORDER BY session_id, seq LIMIT $3"""
EXPORT_ENTRIES = f"""SELECT {ENTRIES.select()} FROM {{s}}.entries WHERE (scope, key) > ($1, $2)
    AND (expires_at IS NULL OR expires_at > $3) ORDER BY scope, key LIMIT $4"""
# One session ($1) and its agent.
EXPORT_SESSION_AGENT = (
    f"SELECT {_AGENT} FROM {{s}}.agents"
    " WHERE id = (SELECT agent_id FROM {s}.sessions WHERE id = $1)"
)
EXPORT_SESSION = f"SELECT {_SESSION}, s.last_seq FROM {{s}}.sessions s WHERE s.id = $1"
EXPORT_SESSION_RUNS = f"""SELECT {_RUN}, state FROM {{s}}.runs
    WHERE session_id = $1 AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4"""
EXPORT_SESSION_MESSAGES = f"""SELECT {_MESSAGE} FROM {{s}}.messages
    WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"""

# -- import ------------------------------------------------------------------------

# The ids of the given lists that exist already; of the entries, the (1-based) positions in
# the lists $5 (scopes) and $6 (keys) of those that are live at $7.
TAKEN_IDS = """
SELECT array(SELECT id FROM {s}.agents WHERE id = ANY($1::text[])),
       array(SELECT id FROM {s}.sessions WHERE id = ANY($2::text[])),
       array(SELECT id FROM {s}.runs WHERE id = ANY($3::text[])),
       array(SELECT name FROM {s}.agents WHERE name = ANY($4::text[])),
       array(SELECT u.n FROM unnest($5::text[], $6::text[]) WITH ORDINALITY AS u (scope, key, n)
             WHERE EXISTS (SELECT 1 FROM {s}.entries e WHERE e.scope = u.scope AND e.key = u.key
             AND (e.expires_at IS NULL OR e.expires_at > $7)))
"""
# An import writes only keys that have no live entry: it replaces an expired one.
IMPORT_ENTRY = (
    _insert(ENTRIES, ("terms", "text"))
    + " ON CONFLICT (scope, key) DO UPDATE SET "
    + ", ".join(f"{name} = EXCLUDED.{name}" for name in (*ENTRIES.names[2:], "terms"))
)


# -- entries ---------------------------------------------------------------------
# A key range is ``key >= lower [AND key < upper]``. ``ENTRY_STATEMENTS`` is keyed by
# statement name; ``list``, ``delete`` and ``copy`` have one per (bounded[, reverse|tags]).

_ENTRY = ENTRIES.select()
# The expiry rule, of the stored row ``e`` at time ``now``: an expired entry counts as absent
# for reads and for writes (a write to its key starts again at version 1, owner and all).
_EXPIRED = "({s}.entries.expires_at IS NOT NULL AND {s}.entries.expires_at <= {now})"
_LIVE = "(expires_at IS NULL OR expires_at > {now})"
_REPLACE = """ON CONFLICT (scope, key) DO UPDATE SET value = EXCLUDED.value,
    data = EXCLUDED.data, tag = EXCLUDED.tag,
    version = CASE WHEN {expired} THEN 1 ELSE {s}.entries.version + 1 END,
    updated_at = EXCLUDED.updated_at, owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at,
    terms = EXCLUDED.terms"""
# $1 scope, $2 keys, $3 values (JSON text), $4 data, $5 tags, $6 now, $7 owners, $8 expiries,
# $9 search terms, each entry's joined by spaces (no term holds one; NULL: none).
_PUT = f"""INSERT INTO {{s}}.entries ({_ENTRY}, terms)
    SELECT $1, k, v::jsonb, d, t, 1, $6, o, x, string_to_array(w, ' ')
    FROM unnest($2::text[], $3::text[], $4::bytea[], $5::text[], $7::text[],
        $8::timestamptz[], $9::text[]) AS u (k, v, d, t, o, x, w)"""
_REPLACE_PUT = _REPLACE.format(expired=_EXPIRED.format(s="{s}", now="$6"), s="{s}")
# $1 scope, $2 key, $3 patch (JSON text), $4 now, $5 owner (None: kept), $6 the patch's search
# terms[, $7 expected version].
_X4 = _EXPIRED.format(s="{s}", now="$4")
_MERGED = f"""terms = CASE WHEN {_X4} THEN $6::text[] ELSE ARRAY(SELECT DISTINCT
        unnest(coalesce({{s}}.entries.terms, '{{}}') || $6::text[])) END,
    value = CASE WHEN {_X4} THEN $3::jsonb
        ELSE coalesce({{s}}.entries.value, '{{}}'::jsonb) || $3::jsonb END,
    data = CASE WHEN {_X4} THEN NULL ELSE {{s}}.entries.data END,
    tag = CASE WHEN {_X4} THEN NULL ELSE {{s}}.entries.tag END,
    owner = coalesce($5, CASE WHEN {_X4} THEN NULL ELSE {{s}}.entries.owner END),
    expires_at = CASE WHEN {_X4} THEN NULL ELSE {{s}}.entries.expires_at END,
    version = CASE WHEN {_X4} THEN 1 ELSE {{s}}.entries.version + 1 END,
    updated_at = $4"""
_NEW_MERGE = """INSERT INTO {s}.entries (scope, key, value, version, updated_at, owner, terms)
    VALUES ($1, $2, $3::jsonb, 1, $4, $5, $6::text[])"""
_RANGES = {False: "scope = $1 AND key >= $2", True: "scope = $1 AND key >= $2 AND key < $3"}

ENTRY_STATEMENTS: dict[str, str] = {
    "put": f"WITH w AS ({_PUT} {_REPLACE_PUT} RETURNING 1) SELECT count(*) FROM w",
    # an expired entry is replaced; a live one is kept
    "put_if_absent": f"""WITH w AS ({_PUT} {_REPLACE_PUT}
    WHERE {_EXPIRED.format(s="{s}", now="$6")} RETURNING 1) SELECT count(*) FROM w""",
    "get": f"""SELECT {_ENTRY} FROM {{s}}.entries WHERE scope = $1 AND key = $2
    AND {_LIVE.format(now="$3")}""",
    "merge": f"""{_NEW_MERGE} ON CONFLICT (scope, key) DO UPDATE SET {_MERGED}
    RETURNING {_ENTRY}""",
    "merge_if_absent": f"""{_NEW_MERGE} ON CONFLICT (scope, key) DO UPDATE SET {_MERGED}
    WHERE {_X4} RETURNING {_ENTRY}""",
    # write_entries: "drop_expired" first removes the expired entries it touches; "claim"
    # takes an absent key with a version-0 placeholder row (a concurrent insert of that key
    # waits for this transaction), "lock" locks a present one.
    "drop_expired": """DELETE FROM {s}.entries
    WHERE scope = $1 AND key = ANY($2::text[]) AND expires_at <= $3""",
    "claim": """INSERT INTO {s}.entries (scope, key, version, updated_at) VALUES ($1, $2, 0, $3)
    ON CONFLICT (scope, key) DO NOTHING RETURNING true""",
    "lock": "SELECT version FROM {s}.entries WHERE scope = $1 AND key = $2 FOR UPDATE",
    "drop_claims": """DELETE FROM {s}.entries
    WHERE scope = $1 AND key = ANY($2::text[]) AND version = 0""",
    "put_one": f"""INSERT INTO {{s}}.entries ({_ENTRY}, terms)
    VALUES ($1, $2, $3::jsonb, $4, $5, 1, $6, $7, $8, $9::text[]) {_REPLACE_PUT}
    RETURNING {_ENTRY}""",
    "merge_if_version": f"""UPDATE {{s}}.entries SET {_MERGED}
    WHERE scope = $1 AND key = $2 AND version = $7 AND NOT {_X4} RETURNING {_ENTRY}""",
    # search_entries' candidates: $1 scope, $2 terms, $3 lower, $4 upper (NULL: none), $5
    # owner (NULL: any), $6 now. The GIN index is read first (a materialised step): a generic
    # plan would otherwise walk the scope's key range in the primary key.
    "search": f"""WITH found AS MATERIALIZED (
        SELECT {_ENTRY} FROM {{s}}.entries WHERE terms && $2::text[]
    )
    SELECT {_ENTRY} FROM found
    WHERE scope = $1 AND key >= $3 AND ($4::text IS NULL OR key < $4)
    AND ($5::text IS NULL OR owner = $5) AND {_LIVE.format(now="$6")}""",
    # refresh_entries: $1 scope, $2 keys, $3 now, $4 the new expiry (nothing else changes)
    "refresh": f"""WITH r AS (UPDATE {{s}}.entries SET expires_at = $4
    WHERE scope = $1 AND key = ANY($2::text[]) AND {_LIVE.format(now="$3")} RETURNING 1)
    SELECT count(*) FROM r""",
}
for _bounded in (False, True):
    _n = 4 if _bounded else 3  # the first parameter after the range
    for _reverse in (False, True):
        ENTRY_STATEMENTS[f"list {_bounded} {_reverse}"] = f"""SELECT {_ENTRY} FROM {{s}}.entries
    WHERE {_RANGES[_bounded]} AND {_LIVE.format(now=f"${_n + 1}")}
    ORDER BY key {"DESC" if _reverse else "ASC"} LIMIT ${_n}"""
    for _tagged in (False, True):
        _tags = f"AND tag = ANY(${_n}::text[])" if _tagged else ""
        _now = f"${_n + 1}" if _tagged else f"${_n}"  # then now: only live ones are counted
        ENTRY_STATEMENTS[f"delete {_bounded} {_tagged}"] = f"""WITH d AS (DELETE FROM {{s}}.entries
    WHERE {_RANGES[_bounded]} {_tags} RETURNING expires_at)
    SELECT count(*) FROM d WHERE {_LIVE.format(now=_now)}"""
    ENTRY_STATEMENTS[f"longest {_bounded}"] = f"""SELECT max(length(key)) FROM {{s}}.entries
    WHERE {_RANGES[_bounded]} AND {_LIVE.format(now=f"${_n}")}"""
    # the range of the copy's target (to_scope, to_prefix's range), then now
    ENTRY_STATEMENTS[f"drop_expired {_bounded}"] = f"""DELETE FROM {{s}}.entries
    WHERE {_RANGES[_bounded]} AND expires_at <= ${_n}"""
    # then: to_scope, to_prefix, length of prefix, now (the target's expired entries are gone)
    ENTRY_STATEMENTS[f"copy {_bounded}"] = f"""WITH c AS (
    INSERT INTO {{s}}.entries ({_ENTRY}, terms)
    SELECT ${_n}, ${_n + 1} || substr(key, ${_n + 2} + 1), value, data, tag, 1, ${_n + 3},
        owner, expires_at, terms
    FROM {{s}}.entries WHERE {_RANGES[_bounded]} AND {_LIVE.format(now=f"${_n + 3}")}
    {_REPLACE.format(expired="false", s="{s}")} RETURNING 1)
    SELECT count(*) FROM c"""


# -- lifecycle: erasure, accounting, retention (the rules: _lifecycle) -------------------
# Erasure and an idle batch are one statement each: count what the chosen sessions hold,
# delete them (runs and messages cascade); erasure deletes the owned entries too.
_DROP_CHOSEN = """chosen AS ({chosen}),
    gone AS (DELETE FROM {s}.sessions WHERE id IN (SELECT id FROM chosen)
        RETURNING run_count, message_count)"""
_COUNTS = """(SELECT count(*) FROM gone), (SELECT coalesce(sum(run_count), 0)::bigint FROM gone),
    (SELECT coalesce(sum(message_count), 0)::bigint FROM gone)"""
_BY_EXTERNAL_ID = "SELECT id FROM {s}.sessions WHERE external_id = $1"
ERASE = f"""WITH {_DROP_CHOSEN.format(chosen=_BY_EXTERNAL_ID, s="{s}")},
    e AS (DELETE FROM {{s}}.entries WHERE owner = $1 RETURNING expires_at)
    SELECT {_COUNTS}, (SELECT count(*) FROM e WHERE {_LIVE.format(now="$2")})"""
# $1 idle_before, $2 limit
_IDLE = "SELECT id FROM {s}.sessions WHERE updated_at < $1 ORDER BY updated_at, id LIMIT $2"
PRUNE_IDLE = f"""WITH {_DROP_CHOSEN.format(chosen=_IDLE, s="{s}")}
    SELECT {_COUNTS}"""
# $1 after id, $2 keep_last, $3 page size: sessions with the seq of the newest message that goes
PRUNE_CUTOFFS = """SELECT id, (SELECT seq FROM {s}.messages WHERE session_id = s.id
        ORDER BY seq DESC OFFSET $2 LIMIT 1)
    FROM {s}.sessions s WHERE id > $1 ORDER BY id LIMIT $3"""
# $1 session, $2 through seq, $3 at most this many (the oldest)
PRUNE_MESSAGES = """WITH d AS (DELETE FROM {s}.messages WHERE session_id = $1
    AND seq <= LEAST($2, coalesce((SELECT seq FROM {s}.messages WHERE session_id = $1
        ORDER BY seq OFFSET $3 - 1 LIMIT 1), $2))
    RETURNING coalesce(octet_length(content), 0) AS bytes
), counted AS (
    UPDATE {s}.sessions s SET message_count = s.message_count - (SELECT count(*) FROM d),
        content_bytes = s.content_bytes - (SELECT sum(bytes) FROM d)
    WHERE s.id = $1 AND EXISTS (SELECT FROM d)
) SELECT count(*) FROM d"""
# $1 now, $2 limit
PRUNE_EXPIRED = """WITH d AS (DELETE FROM {s}.entries e USING (SELECT scope, key FROM {s}.entries
        WHERE expires_at <= $1 LIMIT $2) x
    WHERE e.scope = x.scope AND e.key = x.key AND e.expires_at <= $1 RETURNING 1)
    SELECT count(*) FROM d"""


def _stats(by_external: bool, by_agent: bool) -> str:
    """One statement (one snapshot, no transaction): the sessions' counters (v8) summed, one
    row read per session counted, then the live entries counted and summed (of the owner
    ``external_id``; none with ``agent_id`` alone). Parameters: the external_id and/or
    agent_id given, in that order, then now (when entries are counted)."""
    columns = ["external_id"] * by_external + ["agent_id"] * by_agent
    where = " AND ".join(["true"] + [f"{name} = ${n}" for n, name in enumerate(columns, 1)])
    sessions = f"""SELECT count(*), coalesce(sum(run_count), 0)::bigint,
        coalesce(sum(message_count), 0)::bigint, coalesce(sum(content_bytes), 0)::bigint
        FROM {{s}}.sessions WHERE {where}"""
    if by_agent and not by_external:
        return f"SELECT c.*, 0::bigint, 0::bigint FROM ({sessions}) c"
    now = f"${len(columns) + 1}"
    owner = " AND owner = $1" if by_external else ""
    return f"""SELECT c.*, e.* FROM ({sessions}) c,
    (SELECT count(*), coalesce(sum(octet_length(data)), 0)::bigint FROM {{s}}.entries
        WHERE {_LIVE.format(now=now)}{owner}) e"""


# Keyed by "by_external by_agent" (_stats).
LIFECYCLE_STATEMENTS: dict[str, str] = {
    "erase": ERASE,
    "prune_idle": PRUNE_IDLE,
    "prune_cutoffs": PRUNE_CUTOFFS,
    "prune_messages": PRUNE_MESSAGES,
    "prune_expired": PRUNE_EXPIRED,
}
for _by_external in (False, True):
    for _by_agent in (False, True):
        LIFECYCLE_STATEMENTS[f"stats {_by_external} {_by_agent}"] = _stats(_by_external, _by_agent)


class Statements:
    """The statements above for one schema: its quoted name in place of ``{s}``."""

    def __init__(self, schema: str) -> None:
        quoted = quote_schema(schema)

        def fill(template: str) -> str:
            return template.replace("{s}", quoted)

        self.schema = schema
        self.migration_lock = MIGRATION_LOCK
        self.migrations_table = fill(MIGRATIONS_TABLE)
        self.applied_version = fill(APPLIED_VERSION)
        self.record_migration = fill(RECORD_MIGRATION)
        self.migrations = tuple((version, fill(sql)) for version, sql in MIGRATIONS)
        self.list_agents = fill(LIST_AGENTS)
        self.import_agent = fill(IMPORT_AGENT)
        self.delete_agent = fill(DELETE_AGENT)
        self.get_session = fill(GET_SESSION)
        self.import_session = fill(IMPORT_SESSION)
        self.update_session = fill(UPDATE_SESSION)
        self.delete_session = fill(DELETE_SESSION)
        self.delete_sessions = fill(DELETE_SESSIONS)
        self.purge_sessions = fill(PURGE_SESSIONS)
        self.list_sessions = {key: fill(sql) for key, sql in LIST_SESSIONS.items()}
        self.initialize_run = fill(INITIALIZE_RUN)
        self.initialize_run_with_metadata = fill(INITIALIZE_RUN_WITH_METADATA)
        self.update_run = fill(UPDATE_RUN)
        self.get_run = fill(GET_RUN)
        self.list_runs = fill(LIST_RUNS)
        self.import_run = fill(IMPORT_RUN)
        self.save_state = fill(SAVE_STATE)
        self.load_state = fill(LOAD_STATE)
        self.add_message = fill(ADD_MESSAGE)
        self.append_messages = fill(APPEND_MESSAGES)
        self.history = fill(HISTORY)
        self.history_excluding_run = fill(HISTORY_EXCLUDING_RUN)
        self.history_after = fill(HISTORY_AFTER)
        self.history_within = fill(HISTORY_WITHIN)
        self.lock_session = fill(LOCK_SESSION)
        self.lock_session_agent = fill(LOCK_SESSION_AGENT)
        self.newest_message_seq = fill(NEWEST_MESSAGE_SEQ)
        self.message_owners = fill(MESSAGE_OWNERS)
        self.repeated_message = fill(REPEATED_MESSAGE)
        self.pop_message = fill(POP_MESSAGE)
        self.truncate_history = fill(TRUNCATE_HISTORY)
        self.drop_history_through = fill(DROP_HISTORY_THROUGH)
        self.fork_session = fill(FORK_SESSION)
        self.count_imported = fill(COUNT_IMPORTED)
        self.import_entry = fill(IMPORT_ENTRY)
        self.taken_ids = fill(TAKEN_IDS)
        self.export = {
            name: fill(template)
            for name, template in (
                ("agents", EXPORT_AGENTS),
                ("sessions", EXPORT_SESSIONS),
                ("runs", EXPORT_RUNS),
                ("messages", EXPORT_MESSAGES),
                ("entries", EXPORT_ENTRIES),
                ("session agent", EXPORT_SESSION_AGENT),
                ("session", EXPORT_SESSION),
                ("session runs", EXPORT_SESSION_RUNS),
                ("session messages", EXPORT_SESSION_MESSAGES),
            )
        }
        self.entries = {key: fill(sql) for key, sql in ENTRY_STATEMENTS.items()}
        self.lifecycle = {key: fill(sql) for key, sql in LIFECYCLE_STATEMENTS.items()}

        self.search = fill(SEARCH)
        self.search_backfill_read = fill(SEARCH_BACKFILL_READ)
        self.search_backfill_write = fill(SEARCH_BACKFILL_WRITE)
        self.entry_search_backfill_read = fill(ENTRY_SEARCH_BACKFILL_READ)
        self.entry_search_backfill_write = fill(ENTRY_SEARCH_BACKFILL_WRITE)


# The candidates of a search: messages holding any of the terms $1, of the session $2, the
# agent $3 and the external_id $4 (NULL: any). Rows: CHAT columns, then the session's. The
# GIN index is read first (a materialised step), then each candidate's session by its key
# (OFFSET 0 keeps that a lookup): a generic plan (a prepared statement after five runs)
# would otherwise probe the index once per session, or scan the sessions.
SEARCH = f"""WITH found AS MATERIALIZED (
    SELECT session_id, {CHAT.select()} FROM {{s}}.messages
    WHERE terms && $1::text[] AND ($2::text IS NULL OR session_id = $2)
)
SELECT {CHAT.select("m.")}, {_SESSION} FROM found m
CROSS JOIN LATERAL (SELECT * FROM {{s}}.sessions WHERE id = m.session_id OFFSET 0) s
WHERE ($3::text IS NULL OR s.agent_id = $3) AND ($4::text IS NULL OR s.external_id = $4)"""
