//! A tree's most-filtered attributes packed beside its position in the
//! spatial index, so a filtered search decides most candidates from the
//! index's leaves without fetching each tree record.
//!
//! Cultivar names are interned into small symbols by a [`CultivarTable`]; a
//! [`BriefFilter`] is a [`TreeFilter`] resolved against that table. Its
//! answer for an entry is [`Verdict::Yes`] or [`Verdict::No`] when the brief
//! settles it, and [`Verdict::Ask`] when the full tree (or its orchard) must
//! be looked at: conditions on orchards or change times, or an entry built
//! without a brief.

use std::collections::HashMap;

use crate::filter::TreeFilter;
use crate::model::{Cultivar, Health, Tree};

/// Symbol of a cultivar outside the table (the table is full): look at the tree.
const NOT_INTERNED: u16 = u16::MAX;
/// `planted_year` value of a tree without a planting year.
const NO_YEAR: i16 = i16::MIN;

/// Health, cultivar symbol and planting year of one tree, 6 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TreeBrief {
    exact: bool,
    health: u8,
    cultivar: u16,
    planted_year: i16,
}

impl TreeBrief {
    /// An entry without a brief: every filter asks for the tree.
    pub const UNKNOWN: TreeBrief = TreeBrief { exact: false, health: 0, cultivar: NOT_INTERNED, planted_year: NO_YEAR };
}

impl Default for TreeBrief {
    fn default() -> Self {
        Self::UNKNOWN
    }
}

/// Interned cultivar names. Symbols are never reused or removed, so a brief
/// computed earlier stays valid for as long as the table lives.
#[derive(Debug, Default, Clone)]
pub struct CultivarTable {
    symbols: HashMap<Cultivar, u16>,
    names: Vec<Cultivar>,
}

impl CultivarTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of interned names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no name is interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The symbol of `cultivar`, interning it when new (a full table answers
    /// "not interned", and briefs with it send filters to the tree).
    pub fn intern(&mut self, cultivar: &Cultivar) -> u16 {
        if let Some(&s) = self.symbols.get(cultivar) {
            return s;
        }
        let Ok(s) = u16::try_from(self.names.len()) else { return NOT_INTERNED };
        if s == NOT_INTERNED {
            return NOT_INTERNED;
        }
        self.symbols.insert(cultivar.clone(), s);
        self.names.push(cultivar.clone());
        s
    }

    /// The symbol of `cultivar` when interned.
    pub fn symbol(&self, cultivar: &Cultivar) -> Option<u16> {
        self.symbols.get(cultivar).copied()
    }

    /// The brief of `tree`, interning its cultivar.
    pub fn brief(&mut self, tree: &Tree) -> TreeBrief {
        self.intern(&tree.cultivar);
        self.brief_of(tree)
    }

    /// The brief `tree` had when it was last briefed (nothing is interned:
    /// a cultivar seen for the first time gives an unknown brief).
    pub fn brief_of(&self, tree: &Tree) -> TreeBrief {
        let Some(cultivar) = self.symbol(&tree.cultivar).filter(|s| *s != NOT_INTERNED) else {
            return TreeBrief::UNKNOWN;
        };
        TreeBrief {
            exact: true,
            health: health_bit(tree.health),
            cultivar,
            planted_year: tree.planted_year.and_then(|y| i16::try_from(y).ok()).unwrap_or(NO_YEAR),
        }
    }
}

fn health_bit(h: Health) -> u8 {
    match h {
        Health::Good => 1,
        Health::Fair => 2,
        Health::Poor => 4,
        Health::Dead => 8,
    }
}

/// What a brief says about a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The tree matches.
    Yes,
    /// The tree does not match.
    No,
    /// Look at the tree: [`TreeFilter::matches`] decides.
    Ask,
}

/// A [`TreeFilter`] resolved against a [`CultivarTable`].
#[derive(Debug, Clone)]
pub struct BriefFilter {
    empty: bool,
    /// Allowed symbols; `None` = any cultivar.
    cultivars: Option<Vec<u16>>,
    /// Allowed health bits; 0 = any.
    health: u8,
    planted_from: Option<i32>,
    planted_to: Option<i32>,
    /// Conditions the brief cannot answer (orchard, change time, text).
    needs_tree: bool,
}

impl BriefFilter {
    /// Resolves `filter`'s cultivar names to `table`'s symbols.
    pub fn new(filter: &TreeFilter, table: &CultivarTable) -> Self {
        let cultivars = (!filter.cultivars.is_empty())
            .then(|| filter.cultivars.iter().filter_map(|c| table.symbol(c)).collect::<Vec<_>>());
        BriefFilter {
            empty: filter.is_empty(),
            cultivars,
            health: filter.health.iter().fold(0, |m, h| m | health_bit(*h)),
            planted_from: filter.planted_from,
            planted_to: filter.planted_to,
            needs_tree: !filter.orchards.is_empty() || filter.updated_since.is_some() || filter.needs_orchard(),
        }
    }

    /// What `brief` says about the filter.
    pub fn admits(&self, brief: &TreeBrief) -> Verdict {
        if self.empty {
            return Verdict::Yes;
        }
        if !brief.exact {
            return Verdict::Ask;
        }
        if self.cultivars.as_ref().is_some_and(|c| !c.contains(&brief.cultivar)) {
            return Verdict::No;
        }
        if self.health != 0 && self.health & brief.health == 0 {
            return Verdict::No;
        }
        if self.planted_from.is_some() || self.planted_to.is_some() {
            if brief.planted_year == NO_YEAR {
                return Verdict::No;
            }
            let year = i32::from(brief.planted_year);
            if self.planted_from.is_some_and(|f| year < f) || self.planted_to.is_some_and(|t| year > t) {
                return Verdict::No;
            }
        }
        if self.needs_tree { Verdict::Ask } else { Verdict::Yes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LonLat, OrchardId, TreeCode, TreeId};

    fn tree(cultivar: &str, health: Health, year: Option<i32>) -> Tree {
        Tree {
            id: TreeId(1),
            code: TreeCode::from_serial(1).unwrap_or_else(|e| panic!("{e}")),
            location: LonLat::new(108.0, 12.5),
            accuracy_m: None,
            cultivar: Cultivar::new(cultivar),
            planted_year: year,
            health,
            height_m: None,
            girth_cm: None,
            orchard_id: OrchardId::new("o1").unwrap_or_else(|e| panic!("{e}")),
            survey_id: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
            updated_at: chrono::DateTime::UNIX_EPOCH,
            version: 1,
        }
    }

    fn filters() -> Vec<TreeFilter> {
        let mut out = vec![TreeFilter::default()];
        for cultivars in [vec![], vec![Cultivar::new("Ri6")], vec![Cultivar::new("Monthong"), Cultivar::new("Ri6")]] {
            for health in [vec![], vec![Health::Good], vec![Health::Poor, Health::Dead]] {
                for (from, to) in [(None, None), (Some(2015), None), (None, Some(2018)), (Some(2016), Some(2016))] {
                    for since in [None, Some(chrono::DateTime::UNIX_EPOCH)] {
                        out.push(TreeFilter {
                            cultivars: cultivars.clone(),
                            health: health.clone(),
                            planted_from: from,
                            planted_to: to,
                            updated_since: since,
                            ..TreeFilter::default()
                        });
                    }
                }
            }
        }
        out
    }

    #[test]
    fn a_brief_never_contradicts_the_full_filter() {
        let mut table = CultivarTable::new();
        let trees: Vec<Tree> = ["Ri6", "Monthong", "Musang King"]
            .iter()
            .flat_map(|c| {
                Health::ALL
                    .iter()
                    .flat_map(move |h| [None, Some(2010), Some(2015), Some(2016), Some(2020)].map(|y| tree(c, *h, y)))
            })
            .collect();
        let briefs: Vec<TreeBrief> = trees.iter().map(|t| table.brief(t)).collect();
        let mut settled = 0;
        for filter in filters() {
            let bf = BriefFilter::new(&filter, &table);
            for (t, b) in trees.iter().zip(&briefs) {
                let full = filter.matches(t, None);
                match bf.admits(b) {
                    Verdict::Yes => assert!(full, "{filter:?} {t:?}"),
                    Verdict::No => assert!(!full, "{filter:?} {t:?}"),
                    Verdict::Ask => {}
                }
                settled += usize::from(bf.admits(b) != Verdict::Ask);
                assert_eq!(bf.admits(&TreeBrief::UNKNOWN) == Verdict::Ask, !filter.is_empty());
            }
        }
        assert!(settled > trees.len() * 50, "briefs settle most cases, got {settled}");
    }

    #[test]
    fn a_cultivar_never_seen_matches_no_briefed_tree() {
        let mut table = CultivarTable::new();
        let b = table.brief(&tree("Ri6", Health::Good, None));
        let filter = TreeFilter { cultivars: vec![Cultivar::new("Kanyao")], ..TreeFilter::default() };
        assert_eq!(BriefFilter::new(&filter, &table).admits(&b), Verdict::No);
        assert_eq!(table.brief_of(&tree("Kanyao", Health::Good, None)), TreeBrief::UNKNOWN);
        assert_eq!(table.brief_of(&tree("Ri6", Health::Good, None)), b);
        assert_eq!(table.len(), 1);
    }
}
