-- Accounts, who changed or removed a tree, and the farm diary.
-- Same logical model as ../postgres/0003_accounts_records.sql.
--
-- Nothing here touches what a survey import writes per tree (`trees`,
-- `changes`, the history rows an import adds only name their own columns), so
-- bulk imports run as fast as before.

-- API accounts. Only the SHA-256 of a token is kept; `revoked_at` set = the
-- token no longer authenticates (accounts are revoked, never deleted).
CREATE TABLE users (
    -- AUTOINCREMENT: an id is never reused (history and records name accounts by id).
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL CHECK (role = 'admin' OR role = 'volunteer' OR role = 'farmer'),
    token_sha256 BLOB NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
) STRICT;

-- The orchards assigned to an account (what a farmer may tend).
CREATE TABLE user_orchards (
    user_id    INTEGER NOT NULL REFERENCES users (id),
    orchard_id TEXT NOT NULL REFERENCES orchards (id),
    PRIMARY KEY (user_id, orchard_id)
) STRICT, WITHOUT ROWID;

-- Who made the change that replaced a version (NULL for an import: see
-- replaced_by_survey; NULL too for an edit made without an actor), and, for a
-- tree's last version, why it was removed. A removed tree is not in `trees`
-- any more: its last version is the row here with removal_reason set.
-- code_serial is set on those rows only: the code of a removed tree is never
-- given to another tree (the partial index finds them; removals are few).
-- Their tree_id also keeps tree ids from being reused: new ids start above
-- MAX(trees.id) and MAX(tree_history.tree_id), each one primary-key lookup.
ALTER TABLE tree_history ADD COLUMN changed_by TEXT;
ALTER TABLE tree_history ADD COLUMN changed_by_user INTEGER;
ALTER TABLE tree_history ADD COLUMN removal_reason TEXT
    CHECK (removal_reason = 'dead' OR removal_reason = 'cut' OR removal_reason = 'mistaken');
ALTER TABLE tree_history ADD COLUMN code_serial INTEGER;
CREATE INDEX tree_history_removed_codes ON tree_history (code_serial) WHERE removal_reason IS NOT NULL;

-- Who created a tree through the API (trees written by an import have no row:
-- their creator is their survey's surveyor). A table of its own rather than
-- columns of `trees`: imports never write it, and it outlives a removal.
CREATE TABLE tree_creations (
    tree_id         INTEGER PRIMARY KEY NOT NULL,
    created_by      TEXT NOT NULL,
    created_by_user INTEGER
) STRICT;

-- The farm diary: append-only records of care and harvest. No foreign key to
-- `trees`: a removed tree keeps its records.
CREATE TABLE tree_records (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tree_id    INTEGER NOT NULL,
    -- YYYY-MM-DD.
    date       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    -- The record's details as JSON, `kind` member included (RecordDetails).
    details    TEXT NOT NULL,
    -- The kind's measured number (amount_kg, percent or weight_kg), exactly:
    -- serde_json reads some 17-digit numbers back one unit in the last place off.
    quantity   REAL,
    note       TEXT,
    corrects   INTEGER REFERENCES tree_records (id),
    author     TEXT NOT NULL,
    author_id  INTEGER,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX tree_records_tree_id ON tree_records (tree_id);

-- Who last wrote an orchard through the API (NULL: an import).
ALTER TABLE orchards ADD COLUMN updated_by TEXT;
