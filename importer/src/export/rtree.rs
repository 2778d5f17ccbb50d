//! Bulk loading of a SQLite R*Tree virtual table (the GeoPackage spatial
//! index) by writing its shadow tables directly, as GDAL does.
//!
//! Inserting a million rows one by one through the `rtree` module costs
//! about 10 µs each (choose-leaf, splits, forced reinserts). Packing the
//! tree here with Sort-Tile-Recursive and writing each node once takes a
//! fraction of that, and gives a tree at least as good for queries.
//!
//! The on-disk format is SQLite's (see the comments at the top of its
//! `rtree.c`, stable since the module exists, as every SQLite version must
//! read every file): `<name>_node(nodeno, data)` holds the nodes, node 1 is
//! the root; a node is a 2-byte big-endian depth (root only; leaves are depth
//! 0), a 2-byte big-endian cell count, then cells of an 8-byte big-endian
//! rowid (leaf) or child node number, and `minx, maxx, miny, maxy` as
//! big-endian 32-bit floats, the whole node zero-padded to the root's size;
//! `<name>_rowid(rowid, nodeno)` maps each row to its leaf and
//! `<name>_parent(nodeno, parentnode)` each non-root node to its parent.

use rusqlite::Connection;

/// One entry: a row id (leaf) or child node number, and its box
/// `[minx, maxx, miny, maxy]` as the `rtree` module stores it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell {
    pub(crate) id: i64,
    pub(crate) rect: [f32; 4],
}

const RND_TOWARDS: f64 = 1.0 - 1.0 / 8_388_608.0;
const RND_AWAY: f64 = 1.0 + 1.0 / 8_388_608.0;

/// A lower bound as `rtree` stores it (its `rtreeValueDown`): the nearest
/// 32-bit float not above `d`.
pub(crate) fn down(d: f64) -> f32 {
    let f = d as f32;
    if f64::from(f) > d { (d * if d < 0.0 { RND_AWAY } else { RND_TOWARDS }) as f32 } else { f }
}

/// An upper bound as `rtree` stores it (its `rtreeValueUp`).
pub(crate) fn up(d: f64) -> f32 {
    let f = d as f32;
    if f64::from(f) < d { (d * if d < 0.0 { RND_TOWARDS } else { RND_AWAY }) as f32 } else { f }
}

impl Cell {
    /// The cell of a point.
    pub(crate) fn point(id: i64, x: f64, y: f64) -> Self {
        Cell { id, rect: [down(x), up(x), down(y), up(y)] }
    }

    fn center(&self, axis: usize) -> f32 {
        // Halves first: no overflow to infinity near f32::MAX.
        self.rect[2 * axis] / 2.0 + self.rect[2 * axis + 1] / 2.0
    }
}

/// Groups `cells` into nodes of at most `m` by Sort-Tile-Recursive: vertical
/// slices by x, then runs of `m` by y within each slice.
fn str_groups(mut cells: Vec<Cell>, m: usize) -> Vec<Vec<Cell>> {
    let nodes = cells.len().div_ceil(m);
    let slices = (nodes as f64).sqrt().ceil().max(1.0) as usize;
    let per_slice = slices * m;
    cells.sort_unstable_by(|a, b| a.center(0).total_cmp(&b.center(0)));
    let mut groups = Vec::with_capacity(nodes);
    for slice in cells.chunks_mut(per_slice) {
        slice.sort_unstable_by(|a, b| a.center(1).total_cmp(&b.center(1)));
        groups.extend(slice.chunks(m).map(<[Cell]>::to_vec));
    }
    groups
}

fn bounds(cells: &[Cell]) -> [f32; 4] {
    cells.iter().fold([f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, f32::NEG_INFINITY], |b, c| {
        [b[0].min(c.rect[0]), b[1].max(c.rect[1]), b[2].min(c.rect[2]), b[3].max(c.rect[3])]
    })
}

fn encode(size: usize, depth: u16, cells: &[Cell]) -> Vec<u8> {
    let mut node = Vec::with_capacity(size);
    node.extend_from_slice(&depth.to_be_bytes());
    node.extend_from_slice(&(cells.len() as u16).to_be_bytes());
    for cell in cells {
        node.extend_from_slice(&cell.id.to_be_bytes());
        for v in cell.rect {
            node.extend_from_slice(&v.to_be_bytes());
        }
    }
    node.resize(size, 0);
    node
}

/// Fills the empty 2-dimensional `rtree` table `name` (just created, in the
/// current transaction) with `cells`.
pub(crate) fn bulk_load(conn: &Connection, name: &str, cells: Vec<Cell>) -> rusqlite::Result<()> {
    if cells.is_empty() {
        return Ok(());
    }
    let size: i64 =
        conn.query_row(&format!("SELECT length(data) FROM \"{name}_node\" WHERE nodeno = 1"), [], |r| r.get(0))?;
    let size = usize::try_from(size).unwrap_or(0);
    // 8-byte id and four 4-byte coordinates per cell, after a 4-byte header.
    let m = size.saturating_sub(4) / 24;
    if m < 2 {
        let code = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT);
        return Err(rusqlite::Error::SqliteFailure(code, Some(format!("{name}: unexpected R-tree node size {size}"))));
    }
    let mut put_node =
        conn.prepare(&format!("INSERT OR REPLACE INTO \"{name}_node\" (nodeno, data) VALUES (?1, ?2)"))?;
    let mut put_rowid = conn.prepare(&format!("INSERT INTO \"{name}_rowid\" (rowid, nodeno) VALUES (?1, ?2)"))?;
    let mut put_parent =
        conn.prepare(&format!("INSERT INTO \"{name}_parent\" (nodeno, parentnode) VALUES (?1, ?2)"))?;
    let mut link = |depth: u16, cells: &[Cell], node: i64| -> rusqlite::Result<()> {
        for cell in cells {
            if depth == 0 {
                put_rowid.execute([cell.id, node])?;
            } else {
                put_parent.execute([cell.id, node])?;
            }
        }
        Ok(())
    };
    let mut level = cells;
    let mut depth: u16 = 0;
    let mut next_node: i64 = 2;
    while level.len() > m {
        let mut parents = Vec::with_capacity(level.len().div_ceil(m));
        for group in str_groups(level, m) {
            let node = next_node;
            next_node += 1;
            put_node.execute(rusqlite::params![node, encode(size, 0, &group)])?;
            link(depth, &group, node)?;
            parents.push(Cell { id: node, rect: bounds(&group) });
        }
        level = parents;
        depth += 1;
    }
    put_node.execute(rusqlite::params![1i64, encode(size, depth, &level)])?;
    link(depth, &level, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_round_outwards() {
        for d in [108.1270364, 12.6405427, -0.1, 1.0 / 3.0, -179.99999999, 0.0] {
            assert!(f64::from(down(d)) <= d && f64::from(up(d)) >= d, "{d}");
            assert!(f64::from(up(d)) - f64::from(down(d)) < 2e-5, "{d}");
        }
        assert_eq!((down(0.5), up(0.5)), (0.5, 0.5));
    }

    /// A tree packed here equals what SQLite finds: every point by a box
    /// query, `rtreecheck` clean, for sizes around node boundaries.
    #[test]
    fn packed_tree_answers_queries() -> rusqlite::Result<()> {
        for n in [1usize, 2, 51, 52, 2601, 2602, 7000] {
            let conn = Connection::open_in_memory()?;
            conn.execute_batch("BEGIN; CREATE VIRTUAL TABLE r USING rtree(id, minx, maxx, miny, maxy)")?;
            let points: Vec<(i64, f64, f64)> = (1..=n as i64)
                .map(|i| (i * 3, 108.0 + (i * 7919 % 1000) as f64 * 1e-4, 12.0 - (i * 104_729 % 997) as f64 * 1e-4))
                .collect();
            bulk_load(&conn, "r", points.iter().map(|&(id, x, y)| Cell::point(id, x, y)).collect())?;
            conn.execute_batch("COMMIT")?;
            let check: String = conn.query_row("SELECT rtreecheck('r')", [], |r| r.get(0))?;
            assert_eq!(check, "ok", "n = {n}");
            let count: i64 = conn.query_row("SELECT count(*) FROM r", [], |r| r.get(0))?;
            assert_eq!(count, n as i64);
            let mut stmt =
                conn.prepare("SELECT id FROM r WHERE minx <= ?1 AND maxx >= ?1 AND miny <= ?2 AND maxy >= ?2")?;
            for &(id, x, y) in points.iter().step_by(7) {
                let ids: Vec<i64> = stmt.query_map([x, y], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
                assert!(ids.contains(&id), "n = {n}: {id} not found at {x},{y}");
            }
            // The module keeps working on the packed tree: insert and delete.
            conn.execute("INSERT INTO r VALUES (1, 108.5, 108.5, 12.5, 12.5)", [])?;
            conn.execute("DELETE FROM r WHERE id = 3", [])?;
            let check: String = conn.query_row("SELECT rtreecheck('r')", [], |r| r.get(0))?;
            assert_eq!(check, "ok", "n = {n} after edits");
        }
        Ok(())
    }
}
