//! Attribute filters on trees, shared by search, tiles, OGC API items and exports.

use chrono::{DateTime, Utc};

use crate::model::{Cultivar, Health, Orchard, OrchardId, Tree};

/// Conditions a tree must all meet. An empty filter matches every tree.
///
/// Text conditions on orchards (`commune`, `district`, `province`,
/// `planting_area_code`) compare without regard to case or Vietnamese
/// diacritics; `text` looks for a substring of the tree's code or its
/// orchard's name, the same way.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TreeFilter {
    /// Any of these cultivars (normalised names); empty = any.
    pub cultivars: Vec<Cultivar>,
    /// Any of these health states; empty = any.
    pub health: Vec<Health>,
    /// Planted in or after this year (trees without a year never match a year bound).
    pub planted_from: Option<i32>,
    /// Planted in or before this year.
    pub planted_to: Option<i32>,
    /// Any of these orchards; empty = any.
    pub orchards: Vec<OrchardId>,
    /// The orchard's planting-area code.
    pub planting_area_code: Option<String>,
    /// The orchard's commune.
    pub commune: Option<String>,
    /// The orchard's district.
    pub district: Option<String>,
    /// The orchard's province.
    pub province: Option<String>,
    /// Changed at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
    /// Substring of the tag code or of the orchard's name.
    pub text: Option<String>,
}

/// Folds text for comparison: lower case, Vietnamese diacritics removed
/// (`Đắk Lắk` -> `dak lak`), runs of white space as one space, trimmed.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.trim().chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(strip_mark(c));
    }
    out
}

fn strip_mark(c: char) -> char {
    const GROUPS: [(&str, char); 7] = [
        ("àáảãạăằắẳẵặâầấẩẫậÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬ", 'a'),
        ("èéẻẽẹêềếểễệÈÉẺẼẸÊỀẾỂỄỆ", 'e'),
        ("ìíỉĩịÌÍỈĨỊ", 'i'),
        ("òóỏõọôồốổỗộơờớởỡợÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢ", 'o'),
        ("ùúủũụưừứửữựÙÚỦŨỤƯỪỨỬỮỰ", 'u'),
        ("ỳýỷỹỵỲÝỶỸỴ", 'y'),
        ("đĐ", 'd'),
    ];
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    for (chars, base) in GROUPS {
        if chars.contains(c) {
            return base;
        }
    }
    c.to_lowercase().next().unwrap_or(c)
}

impl TreeFilter {
    /// True when no condition is set.
    pub fn is_empty(&self) -> bool {
        *self == TreeFilter::default()
    }

    /// True when a condition looks at the tree's orchard (callers must then pass it).
    pub fn needs_orchard(&self) -> bool {
        self.planting_area_code.is_some()
            || self.commune.is_some()
            || self.district.is_some()
            || self.province.is_some()
            || self.text.is_some()
    }

    /// Whether `tree` (in `orchard`, when known) meets every condition. A
    /// condition on the orchard fails when the orchard is not given.
    pub fn matches(&self, tree: &Tree, orchard: Option<&Orchard>) -> bool {
        if !self.cultivars.is_empty() && !self.cultivars.contains(&tree.cultivar) {
            return false;
        }
        if !self.health.is_empty() && !self.health.contains(&tree.health) {
            return false;
        }
        if self.planted_from.is_some() || self.planted_to.is_some() {
            let Some(year) = tree.planted_year else { return false };
            if self.planted_from.is_some_and(|from| year < from) || self.planted_to.is_some_and(|to| year > to) {
                return false;
            }
        }
        if !self.orchards.is_empty() && !self.orchards.contains(&tree.orchard_id) {
            return false;
        }
        if self.updated_since.is_some_and(|since| tree.updated_at < since) {
            return false;
        }
        if !self.needs_orchard() {
            return true;
        }
        let Some(orchard) = orchard else { return false };
        let same = |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| fold(w) == fold(have));
        if let Some(code) = &self.planting_area_code {
            match &orchard.planting_area_code {
                Some(have) if fold(have) == fold(code) => {}
                _ => return false,
            }
        }
        if !same(&self.commune, &orchard.commune)
            || !same(&self.district, &orchard.district)
            || !same(&self.province, &orchard.province)
        {
            return false;
        }
        if let Some(text) = &self.text {
            let needle = fold(text);
            if !fold(tree.code.as_str()).contains(&needle) && !fold(&orchard.name).contains(&needle) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LonLat, TreeCode, TreeId};

    fn orchard() -> Orchard {
        Orchard {
            id: OrchardId::new("DL-1").unwrap(),
            name: "Vườn Ông Tám".into(),
            owner: "Nguyễn Văn Tám".into(),
            commune: "Ea Tiêu".into(),
            district: "Cư Kuin".into(),
            province: "Đắk Lắk".into(),
            planting_area_code: Some("VN-DLK-0123".into()),
            gln: None,
            boundary: None,
        }
    }

    fn tree() -> Tree {
        Tree {
            id: TreeId(5),
            code: TreeCode::from_serial(5).unwrap(),
            location: LonLat { lon: 108.0, lat: 12.7 },
            accuracy_m: None,
            cultivar: Cultivar::new("Ri6"),
            planted_year: Some(2018),
            health: Health::Poor,
            height_m: None,
            girth_cm: None,
            orchard_id: OrchardId::new("DL-1").unwrap(),
            survey_id: None,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            version: 1,
        }
    }

    #[test]
    fn folds_vietnamese() {
        assert_eq!(fold("  Đắk   Lắk "), "dak lak");
        assert_eq!(fold("Vườn Ông Tám"), "vuon ong tam");
    }

    #[test]
    fn every_condition_can_exclude() {
        let (t, o) = (tree(), orchard());
        assert!(TreeFilter::default().matches(&t, None));
        let ok = TreeFilter {
            cultivars: vec![Cultivar::new("ri 6")],
            health: vec![Health::Poor, Health::Dead],
            planted_from: Some(2018),
            planted_to: Some(2018),
            orchards: vec![o.id.clone()],
            planting_area_code: Some("vn-dlk-0123".into()),
            commune: Some("ea tieu".into()),
            district: Some("Cư Kuin".into()),
            province: Some("dak lak".into()),
            updated_since: DateTime::from_timestamp(1_700_000_000, 0),
            text: Some("ông tám".into()),
        };
        assert!(ok.matches(&t, Some(&o)));
        assert!(!ok.matches(&t, None), "orchard conditions need the orchard");
        let fails = [
            TreeFilter { cultivars: vec![Cultivar::new("Monthong")], ..ok.clone() },
            TreeFilter { health: vec![Health::Good], ..ok.clone() },
            TreeFilter { planted_from: Some(2019), ..ok.clone() },
            TreeFilter { planted_to: Some(2017), ..ok.clone() },
            TreeFilter { orchards: vec![OrchardId::new("X").unwrap()], ..ok.clone() },
            TreeFilter { planting_area_code: Some("VN-DLK-9".into()), ..ok.clone() },
            TreeFilter { commune: Some("Hòa Thắng".into()), ..ok.clone() },
            TreeFilter { district: Some("Krông Pắc".into()), ..ok.clone() },
            TreeFilter { province: Some("Lâm Đồng".into()), ..ok.clone() },
            TreeFilter { updated_since: DateTime::from_timestamp(1_700_000_001, 0), ..ok.clone() },
            TreeFilter { text: Some("zzz".into()), ..ok.clone() },
        ];
        for (i, f) in fails.iter().enumerate() {
            assert!(!f.matches(&t, Some(&o)), "condition {i} should exclude");
        }
        let by_code = TreeFilter { text: Some(t.code.as_str()[..4].to_lowercase()), ..Default::default() };
        assert!(by_code.matches(&t, Some(&o)));
        let no_year = Tree { planted_year: None, ..t.clone() };
        assert!(!TreeFilter { planted_from: Some(2000), ..Default::default() }.matches(&no_year, None));
    }
}
