-- Traceability: orchard GLNs, pre-printed tags, harvest lots, scan counts.
-- Same logical model as ../sqlite/0004_traceability.sql.

ALTER TABLE orchards ADD COLUMN gln TEXT;

CREATE TABLE tags (
    code      TEXT PRIMARY KEY,
    serial    BIGINT NOT NULL UNIQUE,
    batch     BIGINT NOT NULL,
    issued_at TIMESTAMPTZ NOT NULL,
    issued_by TEXT NOT NULL
);
CREATE INDEX tags_batch ON tags (batch);

CREATE TABLE tag_assignments (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code      TEXT NOT NULL,
    tree_id   BIGINT NOT NULL,
    action    TEXT NOT NULL CHECK (action IN ('assign', 'reassign')),
    by_name   TEXT NOT NULL,
    by_user   BIGINT,
    at        TIMESTAMPTZ NOT NULL,
    note      TEXT
);
CREATE INDEX tag_assignments_code ON tag_assignments (code);

CREATE TABLE lots (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    orchard_id     TEXT NOT NULL REFERENCES orchards (id),
    whole_orchard  BOOLEAN NOT NULL,
    harvest_date   DATE NOT NULL,
    weight_kg      DOUBLE PRECISION NOT NULL,
    boxes          BIGINT,
    packing_house  TEXT,
    lab_results    TEXT NOT NULL,
    domestic       BOOLEAN NOT NULL,
    gtin           TEXT,
    created_by     TEXT NOT NULL,
    created_by_user BIGINT,
    created_at     TIMESTAMPTZ NOT NULL,
    revoked_at     TIMESTAMPTZ,
    revoked_reason TEXT
);
CREATE INDEX lots_orchard ON lots (orchard_id);

CREATE TABLE lot_trees (
    lot_id  BIGINT NOT NULL REFERENCES lots (id),
    tree_id BIGINT NOT NULL,
    PRIMARY KEY (lot_id, tree_id)
);

CREATE TABLE scans (
    code  TEXT NOT NULL,
    hour  TIMESTAMPTZ NOT NULL,
    place TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (code, hour, place)
);
