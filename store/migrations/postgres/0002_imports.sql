-- Survey imports: the file each import came from, the identity of every row
-- it wrote, the history of every tree, and a change log that records a bulk
-- import's trees as id ranges. Same logical model as ../sqlite/0002_imports.sql.

-- The serial number the tag code stands for (the inverse of
-- TreeCode::from_serial; code_serial() in src/common.rs). A code derived from
-- a tree id has that id as its serial, so new trees append to the unique
-- index that keeps codes unique and finds trees by code, instead of inserting
-- at random into an index on the code text (1M trees: 2.9 s instead of 6.7 s
-- on the reference machine). Computed here for the trees stored before: the
-- 6 payload symbols read as a base-31 number x, then
-- (x - 104729) * 781476089 mod 31^6, undoing
-- serial -> serial * 190071437 + 104729 mod 31^6 (geo-core/src/code.rs). A
-- code that is not made of 7 alphabet symbols (only raw SQL could store one)
-- gets -id: unique, and never a valid serial.
ALTER TABLE trees ADD COLUMN code_serial BIGINT;
UPDATE trees SET code_serial =
       CASE WHEN length(code) = 7
                 AND strpos('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 1, 1)) > 0
                 AND strpos('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 2, 1)) > 0
                 AND strpos('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 3, 1)) > 0
                 AND strpos('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 4, 1)) > 0
                 AND strpos('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 5, 1)) > 0
                 AND strpos('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 6, 1)) > 0
                 AND strpos('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 7, 1)) > 0
            THEN (((strpos('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 1, 1)) - 1) * 28629151
                  + (strpos('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 2, 1)) - 1) * 923521
                  + (strpos('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 3, 1)) - 1) * 29791
                  + (strpos('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 4, 1)) - 1) * 961
                  + (strpos('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 5, 1)) - 1) * 31
                  + (strpos('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(code, 6, 1)) - 1)
                  - 104729 + 887503681)::bigint % 887503681) * 781476089 % 887503681
            ELSE -id
       END;
ALTER TABLE trees ALTER COLUMN code_serial SET NOT NULL;
ALTER TABLE trees DROP CONSTRAINT trees_code_key;
ALTER TABLE trees ADD CONSTRAINT trees_code_serial_key UNIQUE (code_serial);

-- The identity of the survey row that wrote this version of the tree (a
-- 64-bit hash of its row key, see ImportWriter in src/lib.rs; NULL when not
-- written by an import row). Imports read all of them (with those kept in
-- tree_history) into memory to recognise rows imported before; no index.
ALTER TABLE trees ADD COLUMN row_key BIGINT;

-- No query filters trees by orchard; the index only slowed imports down.
-- (Tree ids are now also taken in blocks under WRITE_LOCK: see fresh_ids in src/postgres.rs.)
DROP INDEX trees_orchard_id;

-- One row per committed import; its survey is the survey row of the same id.
CREATE TABLE imports (
    survey_id      BIGINT PRIMARY KEY REFERENCES surveys (id),
    file_name      TEXT NOT NULL,
    -- Lower-case hex. One import per file content.
    file_sha256    TEXT NOT NULL UNIQUE,
    format         TEXT NOT NULL,
    external_id    TEXT,
    imported_at    TIMESTAMPTZ NOT NULL,
    trees_inserted BIGINT NOT NULL DEFAULT 0,
    trees_updated  BIGINT NOT NULL DEFAULT 0
);

-- Every version of a tree that a change replaced, exactly as it was stored,
-- with when it was replaced and by which survey (NULL: an edit).
CREATE TABLE tree_history (
    tree_id            BIGINT NOT NULL,
    version            BIGINT NOT NULL,
    code               TEXT NOT NULL,
    lon                DOUBLE PRECISION NOT NULL,
    lat                DOUBLE PRECISION NOT NULL,
    accuracy_m         DOUBLE PRECISION,
    cultivar           TEXT NOT NULL,
    planted_year       INTEGER,
    health             TEXT NOT NULL,
    height_m           DOUBLE PRECISION,
    girth_cm           DOUBLE PRECISION,
    orchard_id         TEXT NOT NULL,
    survey_id          BIGINT,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    row_key            BIGINT,
    replaced_at        TIMESTAMPTZ NOT NULL,
    replaced_by_survey BIGINT,
    PRIMARY KEY (tree_id, version)
);

-- A change row may cover the consecutive trees tree_id..=tree_id_to (NULL:
-- just tree_id). Such a row stands for as many sequence numbers as trees,
-- ending at its seq: tree tree_id + k has sequence number
-- seq - (tree_id_to - tree_id) + k. A block is reserved by advancing the
-- identity sequence under WRITE_LOCK (src/postgres.rs), so blocks never overlap.
ALTER TABLE changes ADD COLUMN tree_id_to BIGINT CHECK (tree_id_to IS NULL OR tree_id_to >= tree_id);
ALTER TABLE changes ALTER COLUMN seq SET GENERATED BY DEFAULT;
