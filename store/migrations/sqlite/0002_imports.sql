-- Survey imports: the file each import came from, the identity of every row
-- it wrote, the history of every tree, and a change log that records a bulk
-- import's trees as id ranges. Same logical model as ../postgres/0002_imports.sql.

-- `trees` is rebuilt with the same rows and two new columns, chosen so that a
-- million-tree import appends to its b-trees instead of inserting at random:
-- * `code_serial`: the serial number the tag code stands for (the inverse of
--   TreeCode::from_serial; code_serial() in src/common.rs). A code derived
--   from a tree id has that id as its serial, so new trees append to the
--   unique index that keeps codes unique and finds trees by code; the old
--   unique index on the code text took random insertions, about 3 µs each.
-- * `row_key`: the identity of the survey row that wrote this version (a
--   64-bit hash of its row key, see ImportWriter in src/lib.rs; NULL when not
--   written by an import row). Imports read all of them (with those kept in
--   `tree_history`) into memory to recognise rows imported before; no index.
-- Also: `health IN (...)` built a temporary index on every statement
-- execution (the OR chain below costs nothing), and `trees_orchard_id` goes:
-- no query filters trees by orchard, and it cost a fifth of a bulk import.
CREATE TABLE trees_new (
    id           INTEGER PRIMARY KEY NOT NULL,
    code         TEXT NOT NULL,
    code_serial  INTEGER NOT NULL,
    lon          REAL NOT NULL,
    lat          REAL NOT NULL,
    accuracy_m   REAL,
    cultivar     TEXT NOT NULL,
    planted_year INTEGER,
    health       TEXT NOT NULL CHECK (health = 'good' OR health = 'fair' OR health = 'poor' OR health = 'dead'),
    height_m     REAL,
    girth_cm     REAL,
    orchard_id   TEXT NOT NULL REFERENCES orchards (id),
    survey_id    INTEGER REFERENCES surveys (id),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    row_key      INTEGER
) STRICT;

-- code_serial of a stored code: its 6 payload symbols read as a base-31
-- number x, then (x - 104729) * 781476089 mod 31^6, which undoes
-- serial -> serial * 190071437 + 104729 mod 31^6 (geo-core/src/code.rs). A
-- code that is not made of 7 alphabet symbols (only raw SQL could store one)
-- gets -id: unique, and never a valid serial.
INSERT INTO trees_new (id, code, code_serial, lon, lat, accuracy_m, cultivar, planted_year, health, height_m,
                       girth_cm, orchard_id, survey_id, created_at, updated_at, version)
SELECT id, code,
       CASE WHEN length(code) = 7
                 AND instr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 1, 1)) > 0
                 AND instr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 2, 1)) > 0
                 AND instr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 3, 1)) > 0
                 AND instr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 4, 1)) > 0
                 AND instr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 5, 1)) > 0
                 AND instr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 6, 1)) > 0
                 AND instr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 7, 1)) > 0
            THEN ((((instr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 1, 1)) - 1) * 28629151
                  + (instr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 2, 1)) - 1) * 923521
                  + (instr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 3, 1)) - 1) * 29791
                  + (instr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 4, 1)) - 1) * 961
                  + (instr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 5, 1)) - 1) * 31
                  + (instr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 6, 1)) - 1)
                  - 104729 + 887503681) % 887503681) * 781476089 % 887503681)
            ELSE -id
       END,
       lon, lat, accuracy_m, cultivar, planted_year, health, height_m, girth_cm,
       orchard_id, survey_id, created_at, updated_at, version
FROM trees ORDER BY id;

DROP TABLE trees;
ALTER TABLE trees_new RENAME TO trees;
CREATE UNIQUE INDEX trees_code_serial ON trees (code_serial);

-- One row per committed import; its survey is the survey row of the same id.
CREATE TABLE imports (
    survey_id      INTEGER PRIMARY KEY NOT NULL REFERENCES surveys (id),
    file_name      TEXT NOT NULL,
    -- Lower-case hex. One import per file content.
    file_sha256    TEXT NOT NULL UNIQUE,
    format         TEXT NOT NULL,
    external_id    TEXT,
    imported_at    TEXT NOT NULL,
    trees_inserted INTEGER NOT NULL DEFAULT 0,
    trees_updated  INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Every version of a tree that a change replaced, exactly as it was stored,
-- with when it was replaced and by which survey (NULL: an edit).
CREATE TABLE tree_history (
    tree_id            INTEGER NOT NULL,
    version            INTEGER NOT NULL,
    code               TEXT NOT NULL,
    lon                REAL NOT NULL,
    lat                REAL NOT NULL,
    accuracy_m         REAL,
    cultivar           TEXT NOT NULL,
    planted_year       INTEGER,
    health             TEXT NOT NULL,
    height_m           REAL,
    girth_cm           REAL,
    orchard_id         TEXT NOT NULL,
    survey_id          INTEGER,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    row_key            INTEGER,
    replaced_at        TEXT NOT NULL,
    replaced_by_survey INTEGER,
    PRIMARY KEY (tree_id, version)
) STRICT, WITHOUT ROWID;

-- A change row may cover the consecutive trees tree_id..=tree_id_to (NULL:
-- just tree_id). Such a row stands for as many sequence numbers as trees,
-- ending at its seq: tree tree_id + k has sequence number
-- seq - (tree_id_to - tree_id) + k. Blocks never overlap, so a follower's
-- position can be any sequence number, inside a block or not.
ALTER TABLE changes ADD COLUMN tree_id_to INTEGER CHECK (tree_id_to IS NULL OR tree_id_to >= tree_id);
