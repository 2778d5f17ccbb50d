-- Traceability: orchard GLNs, pre-printed tags, harvest lots, scan counts.
-- Same logical model as ../postgres/0004_traceability.sql.

-- The orchard's GS1 Global Location Number (13 digits), when it has one.
ALTER TABLE orchards ADD COLUMN gln TEXT;

-- Pre-printed tags: codes reserved before any tree has them. A tag is
-- assigned when a tree gets its code (`trees.code`); `tag_assignments` keeps
-- who assigned it and every admin re-assignment.
CREATE TABLE tags (
    code      TEXT PRIMARY KEY NOT NULL,
    -- The number the code stands for (as trees.code_serial).
    serial    INTEGER NOT NULL UNIQUE,
    batch     INTEGER NOT NULL,
    issued_at TEXT NOT NULL,
    issued_by TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX tags_batch ON tags (batch);

CREATE TABLE tag_assignments (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    code      TEXT NOT NULL,
    tree_id   INTEGER NOT NULL,
    action    TEXT NOT NULL CHECK (action = 'assign' OR action = 'reassign'),
    by_name   TEXT NOT NULL,
    by_user   INTEGER,
    at        TEXT NOT NULL,
    note      TEXT
) STRICT;
CREATE INDEX tag_assignments_code ON tag_assignments (code);

-- Harvest lots. The public code is derived from the id (geo_core::LotCode).
CREATE TABLE lots (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    orchard_id     TEXT NOT NULL REFERENCES orchards (id),
    whole_orchard  INTEGER NOT NULL CHECK (whole_orchard IN (0, 1)),
    harvest_date   TEXT NOT NULL,
    weight_kg      REAL NOT NULL,
    boxes          INTEGER,
    packing_house  TEXT,
    -- JSON array of geo_core::LabResult.
    lab_results    TEXT NOT NULL,
    domestic       INTEGER NOT NULL CHECK (domestic IN (0, 1)),
    gtin           TEXT,
    created_by     TEXT NOT NULL,
    created_by_user INTEGER,
    created_at     TEXT NOT NULL,
    revoked_at     TEXT,
    revoked_reason TEXT
) STRICT;
CREATE INDEX lots_orchard ON lots (orchard_id);

-- The trees a lot's fruit came from. No foreign key to `trees`: a removed
-- tree stays part of the lots it gave fruit to.
CREATE TABLE lot_trees (
    lot_id  INTEGER NOT NULL REFERENCES lots (id),
    tree_id INTEGER NOT NULL,
    PRIMARY KEY (lot_id, tree_id)
) STRICT, WITHOUT ROWID;

-- Scans of public codes, counted per code, hour and coarse place (a ~11 km
-- cell, '' when the reader shared none). No personal data.
CREATE TABLE scans (
    code  TEXT NOT NULL,
    hour  TEXT NOT NULL,
    place TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (code, hour, place)
) STRICT, WITHOUT ROWID;
