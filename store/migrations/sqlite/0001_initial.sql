-- orchardmap schema, SQLite flavour. Same logical model as ../postgres/0001_initial.sql.
--
-- STRICT tables: SQLite otherwise accepts any value in any column, and a
-- text in `lon` would only be noticed when the server next loads the trees.
-- Timestamps are RFC 3339 text in UTC, to the microsecond (as PostgreSQL keeps them).

CREATE TABLE orchards (
    id                 TEXT PRIMARY KEY NOT NULL,
    name               TEXT NOT NULL,
    owner              TEXT NOT NULL,
    commune            TEXT NOT NULL,
    district           TEXT NOT NULL,
    province           TEXT NOT NULL,
    planting_area_code TEXT,
    -- GeoJSON Polygon "coordinates" member: [[[lon,lat],...],[hole...]...], exterior ring first.
    boundary           TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
) STRICT;

CREATE TABLE surveys (
    -- AUTOINCREMENT: an id is never reused, even after the newest survey is deleted.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    surveyor    TEXT NOT NULL,
    surveyed_at TEXT NOT NULL,
    source      TEXT NOT NULL,
    device      TEXT
) STRICT;

CREATE TABLE trees (
    -- Allocated by the store inside the import transaction (max + 1 ...), so
    -- an import knows its ids, and hence the derived tag codes, before inserting.
    id           INTEGER PRIMARY KEY NOT NULL,
    code         TEXT NOT NULL UNIQUE,
    lon          REAL NOT NULL,
    lat          REAL NOT NULL,
    accuracy_m   REAL,
    cultivar     TEXT NOT NULL,
    planted_year INTEGER,
    health       TEXT NOT NULL CHECK (health IN ('good', 'fair', 'poor', 'dead')),
    height_m     REAL,
    girth_cm     REAL,
    orchard_id   TEXT NOT NULL REFERENCES orchards (id),
    survey_id    INTEGER REFERENCES surveys (id),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1)
) STRICT;

CREATE INDEX trees_orchard_id ON trees (orchard_id);

-- The change log servers follow. Writers are serialised (BEGIN IMMEDIATE), so
-- commit order is seq order and a reader never sees seq n+1 before n.
CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    tree_id    INTEGER NOT NULL,
    changed_at TEXT NOT NULL
) STRICT;
