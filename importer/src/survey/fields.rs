//! Which field a column or property holds, from its name in English or
//! Vietnamese, in the naming styles of KoboToolbox and ODK Central exports.

use crate::text::fold;

/// A field of a survey row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// Latitude in degrees.
    Lat,
    /// Longitude in degrees.
    Lon,
    /// Projected easting (with `--crs`).
    X,
    /// Projected northing (with `--crs`).
    Y,
    /// A KoboToolbox / ODK raw geopoint: `"lat lon alt accuracy"`.
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
    /// Every field, in the order the mapping is shown.
    pub const ALL: [Field; 18] = [
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

    /// The field a canonical name or alias names (for `--map`).
    pub fn from_name(name: &str) -> Option<Field> {
        let key = fold(name);
        Field::ALL.into_iter().find(|f| fold(f.name()) == key).or_else(|| plain(&key))
    }
}

/// Aliases, folded (lower case, no diacritics, no spaces, `-` or `_`).
fn plain(key: &str) -> Option<Field> {
    Some(match key {
        "lat" | "latitude" | "vido" | "y_lat" => Field::Lat,
        "lon" | "lng" | "long" | "longitude" | "kinhdo" => Field::Lon,
        "x" | "easting" | "toadox" | "xm" | "east" => Field::X,
        "y" | "northing" | "toadoy" | "ym" | "north" => Field::Y,
        "geopoint" | "gps" | "vitri" | "location" | "toado" | "vitricay" => Field::Geopoint,
        "accuracy" | "accuracym" | "precision" | "dochinhxac" | "gpsaccuracy" | "saiso" => Field::Accuracy,
        "altitude" | "altitudem" | "alt" | "ele" | "elevation" | "docao" => Field::Altitude,
        "cultivar" | "variety" | "giong" | "giongcay" | "loaigiong" | "cultivarname" => Field::Cultivar,
        "plantedyear" | "plantingyear" | "yearplanted" | "namtrong" | "year" | "nam" => Field::PlantedYear,
        "health" | "condition" | "tinhtrang" | "suckhoe" | "status" | "tinhtrangcay" => Field::Health,
        "orchard" | "orchardid" | "orchardcode" | "mavuon" | "vuon" | "mavuontrong" => Field::Orchard,
        "code" | "tag" | "tagcode" | "macay" | "treecode" | "qr" | "maqr" => Field::Code,
        "treeid" | "idcay" => Field::TreeId,
        "surveyedat" | "time" | "date" | "datetime" | "timestamp" | "thoigian" | "ngay" | "ngaykhaosat" => {
            Field::SurveyedAt
        }
        "submissiontime" | "submissiondate" | "submittedat" => Field::SubmittedAt,
        "height" | "heightm" | "chieucao" | "chieucaom" => Field::Height,
        "girth" | "girthcm" | "chuvi" | "chuvithan" | "chuvigoc" => Field::Girth,
        "uuid" | "key" | "instanceid" | "externalid" => Field::ExternalId,
        _ => return None,
    })
}

/// The field a column name holds, recognising KoboToolbox
/// (`group/_Vị trí cây_latitude`, `_uuid`, `_submission_time`) and ODK
/// Central (`group-vitri-Latitude`, `KEY`, `SubmissionDate`) styles.
pub fn field_of(column: &str) -> Option<Field> {
    // Group prefixes: Kobo `group/name`, ODK `meta/instanceID`.
    let name = column.rsplit('/').next().unwrap_or(column).trim();
    let key = fold(name);
    if let Some(field) = plain(&key) {
        return Some(field);
    }
    // ODK Central's `<group>-<name>`.
    if let Some((_, last)) = name.rsplit_once('-') {
        if let Some(field) = plain(&fold(last)).filter(|f| !matches!(f, Field::Lat | Field::Lon)) {
            return Some(field);
        }
    }
    // Kobo `_<label>_latitude` and ODK `<group>-<name>-Latitude`.
    let lower = name.to_lowercase();
    for (suffix, field) in [
        ("latitude", Field::Lat),
        ("longitude", Field::Lon),
        ("altitude", Field::Altitude),
        ("precision", Field::Accuracy),
        ("accuracy", Field::Accuracy),
    ] {
        if let Some(stem) = lower.strip_suffix(suffix) {
            if stem.ends_with('_') || stem.ends_with('-') {
                return Some(field);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_vietnamese_kobo_and_odk_names() {
        assert_eq!(field_of("Latitude"), Some(Field::Lat));
        assert_eq!(field_of("Vĩ độ"), Some(Field::Lat));
        assert_eq!(field_of("KINH ĐỘ"), Some(Field::Lon));
        assert_eq!(field_of("Năm trồng"), Some(Field::PlantedYear));
        assert_eq!(field_of("Tình trạng"), Some(Field::Health));
        assert_eq!(field_of("Mã vườn"), Some(Field::Orchard));
        assert_eq!(field_of("mã cây"), Some(Field::Code));
        assert_eq!(field_of("Độ chính xác"), Some(Field::Accuracy));
        assert_eq!(field_of("group_cay/Giống"), Some(Field::Cultivar));
        assert_eq!(field_of("_Vị trí cây_latitude"), Some(Field::Lat));
        assert_eq!(field_of("thong_tin/_Vị trí cây_precision"), Some(Field::Accuracy));
        assert_eq!(field_of("Vị trí cây"), Some(Field::Geopoint));
        assert_eq!(field_of("tree-location-Longitude"), Some(Field::Lon));
        assert_eq!(field_of("tree-location-Accuracy"), Some(Field::Accuracy));
        assert_eq!(field_of("_uuid"), Some(Field::ExternalId));
        assert_eq!(field_of("KEY"), Some(Field::ExternalId));
        assert_eq!(field_of("meta/instanceID"), Some(Field::ExternalId));
        assert_eq!(field_of("_submission_time"), Some(Field::SubmittedAt));
        assert_eq!(field_of("SubmissionDate"), Some(Field::SubmittedAt));
        assert_eq!(field_of("Easting"), Some(Field::X));
        assert_eq!(field_of("_id"), None, "Kobo's row number is not a tree id");
        assert_eq!(field_of("ghi chú"), None);
    }

    #[test]
    fn map_names_accept_canonical_names_and_aliases() {
        assert_eq!(Field::from_name("accuracy_m"), Some(Field::Accuracy));
        assert_eq!(Field::from_name("giống"), Some(Field::Cultivar));
        assert_eq!(Field::from_name("colour"), None);
    }
}
