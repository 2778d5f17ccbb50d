//! Optional PostGIS columns on PostgreSQL, for GIS staff who connect QGIS to the
//! tables: `trees.geom` (Point, EPSG:4326) and `orchards.geom` (Polygon), each
//! a stored generated column (so the database keeps it in step with `lon`/`lat`
//! and `boundary` on every write, imports included) with a GiST index.
//!
//! `ORCHARDMAP_POSTGIS` decides: `auto` (the default) adds them where the
//! server has the extension available and the account may create it, and says
//! in the log why not otherwise; `on` fails to open without them; `off` leaves
//! the schema as it is (existing columns are kept). Nothing else in orchardmap
//! reads these columns.

use sqlx::PgPool;

use crate::{Error, Result};

/// Arbitrary key of the advisory lock that serialises this set-up between servers starting at once.
const POSTGIS_LOCK: i64 = 0x6f6d_706f_7374_6769;

/// What `ORCHARDMAP_POSTGIS` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostgisMode {
    /// Use PostGIS when it can be had.
    Auto,
    /// Require it.
    On,
    /// Leave it alone.
    Off,
}

impl PostgisMode {
    /// From the environment (`ORCHARDMAP_POSTGIS`; unset = auto).
    pub fn from_env() -> Result<Self> {
        match std::env::var("ORCHARDMAP_POSTGIS").unwrap_or_default().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Self::Auto),
            "on" | "true" | "1" => Ok(Self::On),
            "off" | "false" | "0" => Ok(Self::Off),
            other => Err(Error::Invalid {
                field: "ORCHARDMAP_POSTGIS",
                reason: format!("{other:?} is not one of auto, on, off"),
            }),
        }
    }
}

/// The GiST index of `trees.geom`.
const TREES_INDEX: &str = "CREATE INDEX IF NOT EXISTS trees_geom ON trees USING gist (geom)";

const SET_UP: [&str; 4] = [
    "ALTER TABLE trees ADD COLUMN IF NOT EXISTS geom geometry(Point, 4326) \
     GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED",
    TREES_INDEX,
    // The boundary is the GeoJSON Polygon `coordinates` member, as text.
    "ALTER TABLE orchards ADD COLUMN IF NOT EXISTS geom geometry(Polygon, 4326) \
     GENERATED ALWAYS AS (CASE WHEN boundary IS NULL THEN NULL ELSE \
     ST_SetSRID(ST_GeomFromGeoJSON('{\"type\":\"Polygon\",\"coordinates\":' || boundary || '}'), 4326) END) STORED",
    "CREATE INDEX IF NOT EXISTS orchards_geom ON orchards USING gist (geom)",
];

/// Adds the PostGIS columns as `mode` asks; returns whether the database has them.
pub(crate) async fn set_up(pool: &PgPool, mode: PostgisMode) -> Result<bool> {
    if mode == PostgisMode::Off {
        return Ok(false);
    }
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)").bind(POSTGIS_LOCK).execute(&mut *conn).await?;
    let outcome = add_columns(&mut conn).await;
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(POSTGIS_LOCK).execute(&mut *conn).await?;
    match (outcome, mode) {
        (Ok(()), _) => Ok(true),
        (Err(why), PostgisMode::On) => {
            Err(Error::Invalid { field: "ORCHARDMAP_POSTGIS", reason: format!("PostGIS is required but {why}") })
        }
        (Err(why), _) => {
            tracing::info!("PostGIS columns not added: {why} (everything else works without them)");
            Ok(false)
        }
    }
}

async fn add_columns(conn: &mut sqlx::PgConnection) -> std::result::Result<(), String> {
    let available: Option<String> =
        sqlx::query_scalar("SELECT name::text FROM pg_available_extensions WHERE name = 'postgis'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
    if available.is_none() {
        return Err("the server has no PostGIS extension (apt-get install postgresql-15-postgis-3)".into());
    }
    sqlx::query("CREATE EXTENSION IF NOT EXISTS postgis")
        .execute(&mut *conn)
        .await
        .map_err(|e| format!("CREATE EXTENSION postgis failed: {e}"))?;
    for sql in SET_UP {
        sqlx::query(sql).execute(&mut *conn).await.map_err(|e| format!("{sql}: {e}"))?;
    }
    Ok(())
}

/// For a bulk import inside `conn`'s transaction: takes the exclusive lock on
/// `trees` and drops the GiST index of `trees.geom`, if there is one (then
/// `true`). The transaction must call [`rebuild_trees_index`] before it
/// commits; rolled back, the index is back as it was.
pub(crate) async fn drop_trees_index(conn: &mut sqlx::PgConnection) -> Result<bool> {
    let present: bool =
        sqlx::query_scalar("SELECT to_regclass('trees_geom') IS NOT NULL").fetch_one(&mut *conn).await?;
    if present {
        sqlx::query("LOCK TABLE trees IN ACCESS EXCLUSIVE MODE").execute(&mut *conn).await?;
        sqlx::query("DROP INDEX trees_geom").execute(&mut *conn).await?;
    }
    Ok(present)
}

/// Builds the GiST index of `trees.geom` again (sorted build: about 1.6 s a million trees).
pub(crate) async fn rebuild_trees_index(conn: &mut sqlx::PgConnection) -> Result<()> {
    sqlx::query("SET LOCAL maintenance_work_mem = '256MB'").execute(&mut *conn).await?;
    sqlx::query(TREES_INDEX).execute(&mut *conn).await?;
    Ok(())
}
