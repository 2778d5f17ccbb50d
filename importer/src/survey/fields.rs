//! Which field a column or property holds, from its name in English or
//! Vietnamese, in the naming styles of KoboToolbox and ODK Central exports.
//!
//! Names are compared folded: lower case, Vietnamese diacritics removed
//! (`đ` → `d`), everything but letters and digits dropped. So `Năm trồng`,
//! `nam_trong` and `NĂM TRỒNG (năm)` are all `namtrong...`. The aliases of
//! each field are listed in [`ALIASES`].

use crate::text::fold;

/// A field of a survey row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// Latitude in degrees (WGS 84 unless `--crs` says otherwise).
    Lat,
    /// Longitude in degrees.
    Lon,
    /// Projected easting (with `--crs`), or longitude when the values are degrees.
    X,
    /// Projected northing (with `--crs`), or latitude when the values are degrees.
    Y,
    /// A KoboToolbox raw geopoint: `"lat lon alt accuracy"`.
    Geopoint,
    /// GPS accuracy in metres.
    Accuracy,
    /// Altitude in metres (read, not stored).
    Altitude,
    /// Cultivar.
    Cultivar,
    /// Planting year.
    PlantedYear,
    /// Health.
    Health,
    /// Orchard id.
    Orchard,
    /// Tag code of an existing or pre-printed tag.
    Code,
    /// Database id of an existing tree.
    TreeId,
    /// When the tree was surveyed.
    SurveyedAt,
    /// When the form was submitted (used when no survey time is given).
    SubmittedAt,
    /// Height in metres.
    Height,
    /// Trunk girth in centimetres.
    Girth,
    /// The submission's id in the tool that made the file (Kobo `_uuid`, ODK `KEY`).
    ExternalId,
}

impl Field {
    /// Number of fields.
    pub const COUNT: usize = 18;

    /// Every field, in the order the mapping is shown.
    pub const ALL: [Field; Field::COUNT] = [
        Field::Lat,
        Field::Lon,
        Field::X,
        Field::Y,
        Field::Geopoint,
        Field::Accuracy,
        Field::Altitude,
        Field::Cultivar,
        Field::PlantedYear,
        Field::Health,
        Field::Orchard,
        Field::Code,
        Field::TreeId,
        Field::SurveyedAt,
        Field::SubmittedAt,
        Field::Height,
        Field::Girth,
        Field::ExternalId,
    ];

    /// The canonical name (the sample's header; what `--map` takes).
    pub fn name(self) -> &'static str {
        match self {
            Field::Lat => "lat",
            Field::Lon => "lon",
            Field::X => "x",
            Field::Y => "y",
            Field::Geopoint => "geopoint",
            Field::Accuracy => "accuracy_m",
            Field::Altitude => "altitude_m",
            Field::Cultivar => "cultivar",
            Field::PlantedYear => "planted_year",
            Field::Health => "health",
            Field::Orchard => "orchard",
            Field::Code => "code",
            Field::TreeId => "tree_id",
            Field::SurveyedAt => "surveyed_at",
            Field::SubmittedAt => "submitted_at",
            Field::Height => "height_m",
            Field::Girth => "girth_cm",
            Field::ExternalId => "external_id",
        }
    }

    /// The field a canonical name or alias names (for `--map`), folded as
    /// column names are.
    pub fn from_name(name: &str) -> Option<Field> {
        let key = fold(name);
        Field::ALL.into_iter().find(|f| fold(f.name()) == key).or_else(|| alias(&key))
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Column and property names each field is recognised by, folded (see the
/// module documentation). The canonical name of each field is recognised too.
pub const ALIASES: &[(Field, &[&str])] = &[
    (Field::Lat, &["lat", "latitude", "vido", "gpslat", "gpslatitude"]),
    (Field::Lon, &["lon", "lng", "long", "longitude", "kinhdo", "gpslon", "gpslng", "gpslongitude"]),
    (Field::X, &["x", "xm", "easting", "east", "toadox"]),
    (Field::Y, &["y", "ym", "northing", "north", "toadoy"]),
    (Field::Geopoint, &["geopoint", "gps", "gpslocation", "location", "position", "vitri", "vitricay", "toado"]),
    (
        Field::Accuracy,
        &["accuracy", "accuracym", "precision", "gpsaccuracy", "dochinhxac", "dochinhxacm", "saiso", "saisom"],
    ),
    (Field::Altitude, &["altitude", "altitudem", "alt", "ele", "elevation", "docao", "docaom"]),
    (Field::Cultivar, &["cultivar", "variety", "cultivarname", "giong", "giongcay", "loaigiong", "giongsaurieng"]),
    (
        Field::PlantedYear,
        &["plantedyear", "plantingyear", "yearplanted", "plantyear", "year", "namtrong", "namtrongcay"],
    ),
    (Field::Health, &["health", "condition", "healthstatus", "tinhtrang", "tinhtrangcay", "suckhoe", "suckhoecay"]),
    (Field::Orchard, &["orchard", "orchardid", "orchardcode", "mavuon", "vuon", "mavuontrong", "idvuon"]),
    (Field::Code, &["code", "tag", "tagcode", "treecode", "qr", "qrcode", "maqr", "macay"]),
    (Field::TreeId, &["treeid", "id", "idcay"]),
    (
        Field::SurveyedAt,
        &[
            "surveyedat",
            "surveydate",
            "time",
            "date",
            "datetime",
            "timestamp",
            "thoigian",
            "thoigiankhaosat",
            "ngay",
            "ngaykhaosat",
            "ngaydieutra",
        ],
    ),
    (Field::SubmittedAt, &["submittedat", "submissiondate", "submissiontime"]),
    (Field::Height, &["height", "heightm", "chieucao", "chieucaom", "chieucaocay"]),
    (Field::Girth, &["girth", "girthcm", "circumference", "chuvi", "chuvicm", "chuvithan", "chuvigoc"]),
    (Field::ExternalId, &["externalid", "uuid", "key", "instanceid"]),
];

fn alias(key: &str) -> Option<Field> {
    ALIASES.iter().find(|(_, names)| names.contains(&key)).map(|(f, _)| *f)
}

/// The geopoint part a column name ends with: Kobo `_<label>_latitude`,
/// ODK `<group>-<name>-Latitude`, `GPS latitude`.
fn geopoint_part(key: &str) -> Option<Field> {
    for (suffix, field) in [
        ("latitude", Field::Lat),
        ("longitude", Field::Lon),
        ("altitude", Field::Altitude),
        ("precision", Field::Accuracy),
        ("accuracy", Field::Accuracy),
    ] {
        if key.len() > suffix.len() && key.ends_with(suffix) {
            return Some(field);
        }
    }
    None
}

/// The field a column or property name holds, recognising KoboToolbox
/// (`group/_Vị trí cây_latitude`, `_uuid`, `_submission_time`) and ODK
/// Central (`group-vitri-Latitude`, `meta-instanceID`, `KEY`,
/// `SubmissionDate`) styles.
///
/// Kobo's own columns start with `_` (`_id`, `_status`, `_index` ...): of
/// those only `_uuid`, `_submission_time` and the geopoint parts are used,
/// so Kobo's row number `_id` is never taken for a tree id.
pub fn field_of(column: &str) -> Option<Field> {
    // Kobo group prefixes: `group/subgroup/name`.
    let name = column.rsplit('/').next().unwrap_or(column).trim();
    let key = fold(name);
    if name.starts_with('_') {
        return match key.as_str() {
            "uuid" => Some(Field::ExternalId),
            "submissiontime" => Some(Field::SubmittedAt),
            _ => geopoint_part(&key),
        };
    }
    if let Some(field) = alias(&key).or_else(|| geopoint_part(&key)) {
        return Some(field);
    }
    // ODK group prefixes: `group-name`.
    let last = name.rsplit('-').next().unwrap_or(name);
    if last.len() < name.len() {
        return alias(&fold(last));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_and_vietnamese_names() {
        assert_eq!(field_of("Latitude"), Some(Field::Lat));
        assert_eq!(field_of("Vĩ độ"), Some(Field::Lat));
        assert_eq!(field_of("KINH ĐỘ"), Some(Field::Lon));
        assert_eq!(field_of("lng"), Some(Field::Lon));
        assert_eq!(field_of("Năm trồng"), Some(Field::PlantedYear));
        assert_eq!(field_of("planting year"), Some(Field::PlantedYear));
        assert_eq!(field_of("Tình trạng"), Some(Field::Health));
        assert_eq!(field_of("condition"), Some(Field::Health));
        assert_eq!(field_of("Mã vườn"), Some(Field::Orchard));
        assert_eq!(field_of("orchard_id"), Some(Field::Orchard));
        assert_eq!(field_of("mã cây"), Some(Field::Code));
        assert_eq!(field_of("Tag"), Some(Field::Code));
        assert_eq!(field_of("Độ chính xác (m)"), Some(Field::Accuracy));
        assert_eq!(field_of("accuracy_m"), Some(Field::Accuracy));
        assert_eq!(field_of("Giống"), Some(Field::Cultivar));
        assert_eq!(field_of("variety"), Some(Field::Cultivar));
        assert_eq!(field_of("Chiều cao (m)"), Some(Field::Height));
        assert_eq!(field_of("Chu vi"), Some(Field::Girth));
        assert_eq!(field_of("Thời gian"), Some(Field::SurveyedAt));
        assert_eq!(field_of("Ngày"), Some(Field::SurveyedAt));
        assert_eq!(field_of("Easting"), Some(Field::X));
        assert_eq!(field_of("northing"), Some(Field::Y));
        assert_eq!(field_of("id"), Some(Field::TreeId));
        assert_eq!(field_of("tree_id"), Some(Field::TreeId));
        assert_eq!(field_of("ghi chú"), None);
        assert_eq!(field_of(""), None);
    }

    #[test]
    fn kobo_names() {
        assert_eq!(field_of("nhom_cay/Giống"), Some(Field::Cultivar));
        assert_eq!(field_of("_Vị trí cây_latitude"), Some(Field::Lat));
        assert_eq!(field_of("_Vị trí cây_longitude"), Some(Field::Lon));
        assert_eq!(field_of("_Vị trí cây_altitude"), Some(Field::Altitude));
        assert_eq!(field_of("thong_tin/_Vị trí cây_precision"), Some(Field::Accuracy));
        assert_eq!(field_of("Vị trí cây"), Some(Field::Geopoint));
        assert_eq!(field_of("_uuid"), Some(Field::ExternalId));
        assert_eq!(field_of("_submission_time"), Some(Field::SubmittedAt));
        // Kobo's own columns are not fields, whatever their folded names look like.
        assert_eq!(field_of("_id"), None, "Kobo's row number is not a tree id");
        assert_eq!(field_of("_status"), None);
        assert_eq!(field_of("_index"), None);
        assert_eq!(field_of("_submitted_by"), None);
    }

    #[test]
    fn odk_names() {
        assert_eq!(field_of("tree-location-Latitude"), Some(Field::Lat));
        assert_eq!(field_of("tree-location-Longitude"), Some(Field::Lon));
        assert_eq!(field_of("tree-location-Accuracy"), Some(Field::Accuracy));
        assert_eq!(field_of("tree-cultivar"), Some(Field::Cultivar));
        assert_eq!(field_of("tree-health"), Some(Field::Health));
        assert_eq!(field_of("meta-instanceID"), Some(Field::ExternalId));
        assert_eq!(field_of("KEY"), Some(Field::ExternalId));
        assert_eq!(field_of("SubmissionDate"), Some(Field::SubmittedAt));
        assert_eq!(field_of("SubmitterName"), None);
        assert_eq!(field_of("Status"), None, "ODK's review status is not the tree's health");
    }

    #[test]
    fn map_names_accept_canonical_names_and_aliases() {
        assert_eq!(Field::from_name("accuracy_m"), Some(Field::Accuracy));
        assert_eq!(Field::from_name("Planted Year"), Some(Field::PlantedYear));
        assert_eq!(Field::from_name("giống"), Some(Field::Cultivar));
        assert_eq!(Field::from_name("colour"), None);
        for f in Field::ALL {
            assert_eq!(Field::from_name(f.name()), Some(f));
            assert_eq!(Field::ALL[f.index()], f);
        }
    }

    #[test]
    fn aliases_are_folded_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for (_, names) in ALIASES {
            for n in *names {
                assert_eq!(fold(n), *n, "alias {n} is not folded");
                assert!(seen.insert(*n), "alias {n} appears twice");
            }
        }
    }
}
