//! The small inline SVG map of tree and lot pages: the orchard boundary, the
//! trees as dots, one tree highlighted and a scale bar, drawn from lon/lat
//! with a local equirectangular projection (equal scale in metres both ways).
//! No tiles, no script, no request: it works offline and on any phone.

use super::{MiniMap, escape, safe_href};

/// Width of the map's viewBox.
pub(crate) const WIDTH: f64 = 300.0;
/// Height of the map's viewBox.
pub(crate) const HEIGHT: f64 = 200.0;
/// Margin around the drawing.
const PAD: f64 = 12.0;
/// Strip at the bottom kept for the scale bar.
const BAR: f64 = 22.0;
/// Smallest span shown, in metres (one tree alone is not drawn at infinite zoom).
const MIN_SPAN_M: f64 = 30.0;
/// Metres per degree of latitude (mean Earth radius 6,371,008.8 m).
const M_PER_DEG: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;
/// Most dots or boundary vertices drawn; beyond, every n-th is kept (a phone
/// cannot tell 20,000 dots on 300 pixels from 2,000, and the page stays small).
const MAX_DRAWN: usize = 2_000;

/// Lon/lat to viewBox pixels for one map.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Projection {
    lon0: f64,
    lat0: f64,
    /// Metres per degree of longitude at `lat0`.
    m_per_deg_lon: f64,
    /// Pixels per metre.
    scale: f64,
}

fn usable(&(lon, lat): &(f64, f64)) -> bool {
    lon.is_finite() && lat.is_finite() && (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat)
}

impl Projection {
    /// The projection that fits every usable coordinate into the drawing area;
    /// `None` when there is none.
    pub(crate) fn fit(coords: impl IntoIterator<Item = (f64, f64)>) -> Option<Self> {
        let mut bounds: Option<(f64, f64, f64, f64)> = None;
        for (lon, lat) in coords.into_iter().filter(usable) {
            bounds = Some(match bounds {
                None => (lon, lat, lon, lat),
                Some((w, s, e, n)) => (w.min(lon), s.min(lat), e.max(lon), n.max(lat)),
            });
        }
        let (w, s, e, n) = bounds?;
        let (lon0, lat0) = ((w + e) / 2.0, (s + n) / 2.0);
        // Near the poles cos(lat) vanishes; the floor keeps the scale finite (not a concern in Vietnam).
        let m_per_deg_lon = M_PER_DEG * lat0.to_radians().cos().max(0.01);
        let width_m = ((e - w) * m_per_deg_lon).max(MIN_SPAN_M);
        let height_m = ((n - s) * M_PER_DEG).max(MIN_SPAN_M);
        let scale = ((WIDTH - 2.0 * PAD) / width_m).min((HEIGHT - 2.0 * PAD - BAR) / height_m);
        Some(Self { lon0, lat0, m_per_deg_lon, scale })
    }

    /// Pixels per metre.
    pub(crate) fn pixels_per_metre(&self) -> f64 {
        self.scale
    }

    /// The point in viewBox pixels (y down), clamped to the viewBox.
    pub(crate) fn project(&self, (lon, lat): (f64, f64)) -> (f64, f64) {
        let cx = WIDTH / 2.0;
        let cy = PAD + (HEIGHT - 2.0 * PAD - BAR) / 2.0;
        let x = cx + (lon - self.lon0) * self.m_per_deg_lon * self.scale;
        let y = cy - (lat - self.lat0) * M_PER_DEG * self.scale;
        (x.clamp(0.0, WIDTH), y.clamp(0.0, HEIGHT))
    }
}

/// Every `n`-th item so that at most [`MAX_DRAWN`] remain.
fn thinned(items: &[(f64, f64)]) -> impl Iterator<Item = &(f64, f64)> {
    items.iter().step_by(items.len().div_ceil(MAX_DRAWN).max(1))
}

/// The longest 1, 2 or 5 × 10ⁿ metres not over `max_m`.
fn nice_length(max_m: f64) -> f64 {
    let mut best = 1.0;
    let mut decade = 1.0;
    while decade <= max_m {
        for step in [1.0, 2.0, 5.0] {
            if step * decade <= max_m {
                best = step * decade;
            }
        }
        decade *= 10.0;
    }
    best
}

/// The map as an HTML `<figure>`: the SVG (titled `title` for screen readers)
/// and a link `link_text` to the full map. Only the link when nothing has a
/// usable position.
pub(crate) fn render(map: &MiniMap, title: &str, link_text: &str) -> String {
    let link = if map.full_map_href.trim().is_empty() {
        String::new()
    } else {
        format!(
            "<p><a class=\"button secondary\" href=\"{}\">{}</a></p>",
            escape(safe_href(&map.full_map_href)),
            escape(link_text)
        )
    };
    let all = map.boundary.iter().chain(&map.points).chain(map.highlight.as_ref()).copied();
    let Some(proj) = Projection::fit(all) else {
        return format!("<div class=\"map\">{link}</div>");
    };
    let mut svg = format!(
        "<svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-labelledby=\"map-title\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title id=\"map-title\">{}</title>\
         <rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#eef5e9\"/>",
        escape(title)
    );
    let ring: Vec<(f64, f64)> = map.boundary.iter().copied().filter(usable).collect();
    if ring.len() >= 3 {
        let points: Vec<String> = thinned(&ring)
            .map(|&p| {
                let (x, y) = proj.project(p);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        svg.push_str(&format!(
            "<polygon points=\"{}\" fill=\"#cfe6bf\" stroke=\"#2e6b1f\" stroke-width=\"2\" stroke-linejoin=\"round\"/>",
            points.join(" ")
        ));
    }
    let trees: Vec<(f64, f64)> = map.points.iter().copied().filter(usable).collect();
    if !trees.is_empty() {
        svg.push_str("<g fill=\"#1b5e20\" stroke=\"#fff\" stroke-width=\"0.6\">");
        for &p in thinned(&trees) {
            let (x, y) = proj.project(p);
            svg.push_str(&format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\"/>"));
        }
        svg.push_str("</g>");
    }
    if let Some(h) = map.highlight.filter(usable) {
        let (x, y) = proj.project(h);
        svg.push_str(&format!(
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"11\" fill=\"none\" stroke=\"#b3261e\" stroke-width=\"3\"/>\
             <circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"6\" fill=\"#b3261e\" stroke=\"#fff\" stroke-width=\"2\"/>"
        ));
    }
    // Scale bar, bottom left, at most a third of the width.
    let metres = nice_length((WIDTH - 2.0 * PAD) / 3.0 / proj.pixels_per_metre());
    let length = metres * proj.pixels_per_metre();
    let label = if metres >= 1000.0 { format!("{} km", metres / 1000.0) } else { format!("{metres} m") };
    let (x0, y0) = (PAD, HEIGHT - 8.0);
    svg.push_str(&format!(
        "<g><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"18\" fill=\"#fff\" opacity=\"0.8\"/>\
         <path d=\"M{x0:.1} {:.1}V{y0:.1}H{:.1}V{:.1}\" fill=\"none\" stroke=\"#111\" stroke-width=\"2\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" font-family=\"sans-serif\" fill=\"#111\">{label}</text></g>",
        x0 - 4.0,
        y0 - 14.0,
        length + 60.0,
        y0 - 5.0,
        x0 + length,
        y0 - 5.0,
        x0 + length + 6.0,
        y0 - 1.0,
    ));
    svg.push_str("</svg>");
    format!("<figure class=\"map\">{svg}<figcaption>{link}</figcaption></figure>")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random stream (no `rand` seed games in tests).
    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    fn inside((x, y): (f64, f64)) -> bool {
        (0.0..=WIDTH).contains(&x) && (0.0..=HEIGHT).contains(&y)
    }

    #[test]
    fn projection_keeps_points_inside_the_viewbox() {
        let mut seed = 7;
        for case in 0..200 {
            // Spreads from one metre to a whole province, around Buôn Ma Thuột and elsewhere.
            let spread = 10f64.powf(-5.0 + 5.0 * lcg(&mut seed));
            let (lon0, lat0) = (100.0 + 10.0 * lcg(&mut seed), 8.0 + 16.0 * lcg(&mut seed));
            let n = 1 + case % 50;
            let pts: Vec<(f64, f64)> = (0..n)
                .map(|_| (lon0 + spread * (lcg(&mut seed) - 0.5), lat0 + spread * (lcg(&mut seed) - 0.5)))
                .collect();
            let proj = Projection::fit(pts.iter().copied()).unwrap();
            for &p in &pts {
                let xy = proj.project(p);
                assert!(inside(xy), "case {case}: {p:?} -> {xy:?}");
                // Inside the drawing area proper, not merely clamped onto the edge.
                assert!(xy.0 >= PAD - 1e-6 && xy.0 <= WIDTH - PAD + 1e-6, "case {case}: x {xy:?}");
                assert!(xy.1 >= PAD - 1e-6 && xy.1 <= HEIGHT - PAD - BAR + 1e-6, "case {case}: y {xy:?}");
            }
        }
    }

    #[test]
    fn equal_scale_in_metres() {
        // 100 m east and 100 m north of a point at 12.7° N draw equally long.
        let (lon, lat): (f64, f64) = (108.05, 12.7);
        let dlon = 100.0 / (M_PER_DEG * lat.to_radians().cos());
        let dlat = 100.0 / M_PER_DEG;
        let proj = Projection::fit([(lon, lat), (lon + dlon, lat + dlat)]).unwrap();
        let (x0, y0) = proj.project((lon, lat));
        let (x1, _) = proj.project((lon + dlon, lat));
        let (_, y1) = proj.project((lon, lat + dlat));
        // cos(lat) is taken at the middle latitude: a few millipixels off over 100 m.
        assert!(((x1 - x0) - (y0 - y1)).abs() < 0.01, "{} vs {}", x1 - x0, y0 - y1);
        assert!(y1 < y0, "north is up");
    }

    #[test]
    fn single_tree_and_nothing() {
        let proj = Projection::fit([(108.0, 12.7)]).unwrap();
        assert!(inside(proj.project((108.0, 12.7))));
        assert!(Projection::fit([]).is_none());
        assert!(Projection::fit([(f64::NAN, 12.0), (500.0, 1.0)]).is_none());
        let map = MiniMap { boundary: vec![], points: vec![], highlight: None, full_map_href: "/map".into() };
        let html = render(&map, "t", "open");
        assert!(!html.contains("<svg") && html.contains("href=\"/map\""));
    }

    #[test]
    fn scale_bar_lengths() {
        assert_eq!(nice_length(0.5), 1.0);
        assert_eq!(nice_length(7.0), 5.0);
        assert_eq!(nice_length(19.9), 10.0);
        assert_eq!(nice_length(20.0), 20.0);
        assert_eq!(nice_length(3_400.0), 2_000.0);
    }

    #[test]
    fn many_points_are_thinned() {
        let points: Vec<(f64, f64)> = (0..25_000).map(|i| (108.0 + f64::from(i) * 1e-6, 12.7)).collect();
        let map = MiniMap { boundary: vec![], points, highlight: None, full_map_href: String::new() };
        let html = render(&map, "t", "open");
        let dots = html.matches("<circle").count();
        assert!(dots <= MAX_DRAWN && dots > MAX_DRAWN / 2, "{dots}");
    }
}
