-- PostgresStore's statements, one under each "-- name:" line; PostgresStore reads this file.
-- {t} is the table, {i} its expiry index and {u} its user index (quoted identifiers), {r} the
-- table's name as a literal for to_regclass; %(name)s are parameters.
-- Every statement is one round trip in autocommit, but for the locked merge at the end.
--
-- How changes merge is Changes.apply_to (wsgisession/records.py); the store contract holds
-- every statement here to it on generated changes. The data column holds what the store's
-- encoder writes: NUL and U+E000 in strings escaped with U+E000, and the floats jsonb's numeric
-- would change (-0.0, and 1e16 or more, which it would read back as ints) as strings tagged
-- U+E000 U+E002. So a jsonb number is an int when its text has no point, else a float.

-- name: schema_table
CREATE TABLE IF NOT EXISTS {t} (
  key text PRIMARY KEY,
  data jsonb NOT NULL,
  meta jsonb NOT NULL,
  expires double precision NOT NULL,
  user_id text
)

-- name: schema_index
CREATE INDEX IF NOT EXISTS {i} ON {t} (expires)

-- name: schema_has_user
-- Whether the table has its user_id column: a table made before the user index has not. Asked
-- first, so a worker's start takes ALTER TABLE's exclusive lock only the one time it is needed.
SELECT EXISTS (
  SELECT FROM pg_attribute
  WHERE attrelid = to_regclass({r}) AND attname = 'user_id' AND NOT attisdropped
)

-- name: schema_add_user
ALTER TABLE {t} ADD COLUMN IF NOT EXISTS user_id text

-- name: schema_user_index
-- Partial: sessions bound to no user cost the index nothing.
CREATE INDEX IF NOT EXISTS {u} ON {t} (user_id) WHERE user_id IS NOT NULL

-- name: schema_lock
-- (table name) Keeps workers that start together from racing on CREATE TABLE.
SELECT pg_advisory_xact_lock(hashtext(%s))

-- name: load
-- A plain SELECT, a read-only statement (a DELETE in it would make every load a write); the
-- store checks the expiry with the caller's now, and deletes a dead row with delete_dead.
SELECT data::text, meta::text, expires FROM {t} WHERE key = %(key)s

-- name: delete_dead
-- A row the load found dead; left alone if another worker refreshed it meanwhile.
DELETE FROM {t} WHERE key = %(key)s AND expires <= %(now)s

-- name: create
INSERT INTO {t} (key, data, meta, expires, user_id)
VALUES (%(key)s, %(data)s::jsonb, %(meta)s::jsonb, %(expires)s, %(user_id)s)
ON CONFLICT (key) DO UPDATE
SET data = EXCLUDED.data, meta = EXCLUDED.meta, expires = EXCLUDED.expires,
    user_id = EXCLUDED.user_id

-- name: create_replacing
-- regenerate(): the live row moves to its new key in place, an UPDATE of the key, not a
-- DELETE and an INSERT. Of two overlapping moves, the second waits for the first's row lock,
-- then finds the row under another key and changes nothing (0 rows). A revocation that met
-- the old row waits the same way and then deletes the moved one: it follows the row's update,
-- which it could not do to a row inserted anew.
UPDATE {t}
SET key = %(key)s, data = %(data)s::jsonb, meta = %(meta)s::jsonb, expires = %(expires)s,
    user_id = %(user_id)s
WHERE key = %(replaces)s AND expires > %(now)s

-- name: touch
UPDATE {t}
SET meta = coalesce(%(meta)s::jsonb, meta), expires = coalesce(%(expires)s, expires),
    user_id = CASE WHEN %(meta)s::jsonb IS NULL THEN user_id ELSE %(user_id)s END
WHERE key = %(key)s AND expires > %(now)s

-- name: save
-- Removals, then updates: jsonb's - and || are exactly that.
UPDATE {t}
SET data = (data - %(removals)s::text[]) || %(updates)s::jsonb,
    meta = coalesce(%(meta)s::jsonb, meta), expires = coalesce(%(expires)s, expires),
    user_id = CASE WHEN %(meta)s::jsonb IS NULL THEN user_id ELSE %(user_id)s END
WHERE key = %(key)s AND expires > %(now)s

-- name: save_int_increments
-- Removals, updates, then int amounts added in numeric, exact at any size, to the value after
-- those (a missing or non-numeric value counts as 0). When a value to add to is a float, or a
-- sum has more than 4300 digits, no row matches and the store merges under a row lock instead.
UPDATE {t}
SET data = (data - %(removals)s::text[]) || %(updates)s::jsonb || coalesce((
      SELECT jsonb_object_agg(i.name, to_jsonb(i.amount::numeric + CASE
        WHEN jsonb_typeof(v.value) = 'number' THEN v.value::text::numeric ELSE 0 END))
      FROM unnest(%(names)s::text[], %(amounts)s::text[]) AS i(name, amount),
        LATERAL (SELECT ((data - %(removals)s::text[]) || %(updates)s::jsonb) -> i.name) AS v(value)
    ), jsonb_build_object()),
    meta = coalesce(%(meta)s::jsonb, meta), expires = coalesce(%(expires)s, expires),
    user_id = CASE WHEN %(meta)s::jsonb IS NULL THEN user_id ELSE %(user_id)s END
WHERE key = %(key)s AND expires > %(now)s AND NOT EXISTS (
  SELECT FROM unnest(%(names)s::text[], %(amounts)s::text[]) AS i(name, amount),
    LATERAL (SELECT ((data - %(removals)s::text[]) || %(updates)s::jsonb) -> i.name) AS v(value)
  WHERE (jsonb_typeof(v.value) = 'number' AND strpos(v.value::text, '.') > 0)
    OR (jsonb_typeof(v.value) = 'string' AND strpos(v.value::text, chr(57344) || chr(57346)) = 2)
    OR length(abs(i.amount::numeric + CASE WHEN jsonb_typeof(v.value) = 'number'
      THEN v.value::text::numeric ELSE 0 END)::text) > 4300
)

-- name: lock_for_merge
-- The locked merge, inside one transaction: the live row's data, locked until the write below.
SELECT data::text FROM {t} WHERE key = %(key)s AND expires > %(now)s FOR UPDATE

-- name: write_merged
UPDATE {t}
SET data = %(data)s::jsonb,
    meta = coalesce(%(meta)s::jsonb, meta), expires = coalesce(%(expires)s, expires),
    user_id = CASE WHEN %(meta)s::jsonb IS NULL THEN user_id ELSE %(user_id)s END
WHERE key = %(key)s

-- name: user_sessions
-- The user's live rows, found by the user index.
SELECT key, data::text, meta::text, expires FROM {t}
WHERE user_id = %(user_id)s AND expires > %(now)s

-- name: revoke_user
-- One statement: every row of the user but the one kept goes, and the live ones are counted.
-- A row moving to a new key meanwhile (create_replacing) is waited for and deleted under its
-- new key; a row written after this statement began is a login that came after it.
WITH gone AS (
  DELETE FROM {t} WHERE user_id = %(user_id)s AND key IS DISTINCT FROM %(keep)s::text
  RETURNING expires
)
SELECT count(*) FILTER (WHERE expires > %(now)s) FROM gone

-- These take positional parameters.

-- name: delete
DELETE FROM {t} WHERE key = %s

-- name: purge
-- (now, batch)
DELETE FROM {t} WHERE key IN (
  SELECT key FROM {t} WHERE expires <= %s LIMIT %s FOR UPDATE SKIP LOCKED
)

-- name: count_expired
-- (now) What purge would delete.
SELECT count(*) FROM {t} WHERE expires <= %s

-- name: stats
-- (now)
SELECT count(*), coalesce(sum(octet_length(data::text)), 0) FROM {t} WHERE expires > %s
