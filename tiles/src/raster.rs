//! Raster (PNG) tiles of trees and clusters, for clients without WebGL and
//! for printing.
//!
//! The API fetches what falls in a tile (single trees at high zoom, clusters
//! further out), turns each into a [`Mark`] placed in tile fractions (`0..1`
//! across the tile, `y` down; [`Mark::tree_at`] and [`Mark::cluster_at`] do
//! the projection) and calls [`render_png`] with the tile's `scale` (1 for
//! `{y}.png`, 2 for `{y}@2x.png`), then serves the bytes as
//! [`PNG_CONTENT_TYPE`].
//!
//! What is drawn, on a fully transparent background:
//!
//! * a tree is a dot of radius [`TREE_RADIUS`] px (at scale 1) in its
//!   [`health_color`], with a thin outline in a darker shade of it;
//! * a cluster is a disc whose radius grows with `log10(count)`
//!   ([`cluster_radius`]). Its fill is [`cluster_fill`]: green when under 10%
//!   of its trees are poor or dead, amber under 30%, red otherwise. Around the
//!   fill, past a thin white gap, a ring shows the health shares as arcs
//!   (good, fair, poor, dead, clockwise from 12 o'clock). The count is written
//!   in the middle, abbreviated by [`abbreviate`] ("35", "1.2k", "35k",
//!   "1.1M"), in white or near-black, whichever contrasts more with the fill.
//!
//! Edges are anti-aliased by coverage: each pixel gets the fraction of it a
//! shape covers, estimated from the distance of its centre to the shape's
//! edge (discs, rings, and the strokes of the built-in digit font), and arc
//! boundaries in the ring are filtered the same way along the arc. Trees are
//! drawn first, then clusters, each in input order (later marks on top).
//!
//! The output depends only on the arguments: equal marks give equal bytes.
//!
//! Symbols are cut at the tile edge, so the caller should also pass marks
//! lying just outside the tile — up to [`MAX_SYMBOL_RADIUS`] px (at scale 1)
//! beyond it — for symbols straddling the edge to be drawn whole on both
//! sides.
//!
//! ```
//! use geo_core::Health;
//! use tiles::raster::{Mark, render_png};
//!
//! let marks = [
//!     Mark::Tree { x: 0.25, y: 0.5, health: Health::Good },
//!     Mark::Cluster { x: 0.7, y: 0.4, count: 1234, counts: [1000, 150, 60, 24] },
//! ];
//! let png = render_png(&marks, 2);
//! assert_eq!(&png[1..4], b"PNG");
//! ```

use std::collections::HashMap;
use std::ops::Range;
use std::sync::OnceLock;

use geo_core::{Health, LonLat};

use crate::TileId;
use font::Glyph;

/// The media type of the tiles [`render_png`] makes, for the `Content-Type` header.
pub const PNG_CONTENT_TYPE: &str = "image/png";

/// Pixels per tile side at scale 1.
pub const TILE_SIZE: u32 = 256;

/// Largest `scale` [`render_png`] accepts; larger values are treated as this.
pub const MAX_SCALE: u32 = 4;

/// Outer radius of a tree dot, outline included, in pixels at scale 1.
pub const TREE_RADIUS: f32 = 3.25;

/// Width of a tree dot's darker outline, in pixels at scale 1.
pub const TREE_OUTLINE: f32 = 1.0;

/// Radius of a cluster of one or two trees, in pixels at scale 1.
const CLUSTER_MIN_RADIUS: f32 = 11.0;

/// Growth of the cluster radius per factor of ten in the count, in pixels.
const CLUSTER_RADIUS_PER_DECADE: f32 = 4.5;

/// Largest radius of any symbol, in pixels at scale 1 (a cluster of
/// 10 million trees or more): how far outside the tile marks can still show.
pub const MAX_SYMBOL_RADIUS: f32 = 46.0;

/// Width of the health-share ring around a cluster, in pixels at scale 1.
const RING_WIDTH: f32 = 3.0;

/// Width of the white gap between the ring and the fill, in pixels at scale 1.
const RING_GAP: f32 = 1.0;

/// An sRGB colour, 8 bits per channel, not premultiplied.
pub type Rgb = [u8; 3];

/// Colour of a healthy tree (and of a cluster with few sick trees): green.
pub const GOOD: Rgb = [0x2e, 0x9d, 0x3a];
/// Colour of a tree in fair health (and of a cluster with some sick trees): amber.
pub const FAIR: Rgb = [0xf2, 0xa9, 0x00];
/// Colour of a tree in poor health (and of a cluster with many sick trees): orange-red.
pub const POOR: Rgb = [0xd4, 0x45, 0x2a];
/// Colour of a dead tree: grey.
pub const DEAD: Rgb = [0x8a, 0x8a, 0x8a];

/// Light label colour, for dark fills.
pub const TEXT_LIGHT: Rgb = [0xff, 0xff, 0xff];
/// Dark label colour, for light fills.
pub const TEXT_DARK: Rgb = [0x1c, 0x1c, 0x1c];

/// Something to draw on a raster tile.
///
/// `x` and `y` are the mark's centre in tile widths: `(0, 0)` is the tile's
/// north-west corner, `(1, 1)` its south-east one. Marks a little outside
/// `0..1` have the part of their symbol that overlaps the tile drawn; marks
/// with a non-finite coordinate are skipped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mark {
    /// One tree, drawn as a dot coloured by its health.
    Tree {
        /// Across the tile, west to east, `0..1`.
        x: f64,
        /// Down the tile, north to south, `0..1`.
        y: f64,
        /// Colours the dot ([`health_color`]).
        health: Health,
    },
    /// Several trees drawn as one circle with their number in it.
    Cluster {
        /// Across the tile, west to east, `0..1`.
        x: f64,
        /// Down the tile, north to south, `0..1`.
        y: f64,
        /// Number of trees: sizes the circle and is the label. A count of 0
        /// is drawn like 1.
        count: u32,
        /// Trees per health: good, fair, poor, dead (the order of
        /// [`Health::ALL`]). Only the shares matter, so they need not add up
        /// to `count`; all zero draws a grey ring and a green fill.
        counts: [u32; 4],
    },
}

impl Mark {
    /// A tree standing at `location`, placed in `tile`.
    pub fn tree_at(tile: TileId, location: LonLat, health: Health) -> Self {
        let (x, y) = tile.fraction(location);
        Mark::Tree { x, y, health }
    }

    /// A cluster centred at `location` with `counts` trees per health (good,
    /// fair, poor, dead), placed in `tile`; its count is their sum
    /// (saturating).
    pub fn cluster_at(tile: TileId, location: LonLat, counts: [u32; 4]) -> Self {
        let (x, y) = tile.fraction(location);
        let count = counts.iter().fold(0u32, |a, c| a.saturating_add(*c));
        Mark::Cluster { x, y, count, counts }
    }
}

/// The colour of a tree dot of this health.
pub const fn health_color(health: Health) -> Rgb {
    match health {
        Health::Good => GOOD,
        Health::Fair => FAIR,
        Health::Poor => POOR,
        Health::Dead => DEAD,
    }
}

/// The fill of a cluster with `counts` trees per health (good, fair, poor,
/// dead), by the share of poor and dead trees: [`GOOD`] under 10%, [`FAIR`]
/// under 30%, [`POOR`] from 30% on. All zero counts as healthy.
pub fn cluster_fill(counts: [u32; 4]) -> Rgb {
    let total: u64 = counts.iter().map(|c| u64::from(*c)).sum();
    let sick = u64::from(counts[2]) + u64::from(counts[3]);
    // Integer comparisons, so a share of exactly 10% or 30% is unambiguous.
    if sick * 10 < total || total == 0 {
        GOOD
    } else if sick * 10 < total * 3 {
        FAIR
    } else {
        POOR
    }
}

/// The colour a cluster's label is written in on `fill`: [`TEXT_LIGHT`] or
/// [`TEXT_DARK`], whichever has the higher WCAG contrast ratio with it.
pub fn label_color(fill: Rgb) -> Rgb {
    let l = relative_luminance(fill);
    let (light, dark) = (relative_luminance(TEXT_LIGHT), relative_luminance(TEXT_DARK));
    // Contrast ratio (L1 + 0.05) / (L2 + 0.05), lighter over darker.
    if (light + 0.05) / (l + 0.05) >= (l + 0.05) / (dark + 0.05) { TEXT_LIGHT } else { TEXT_DARK }
}

/// WCAG 2 relative luminance of an sRGB colour, `0..=1`.
fn relative_luminance(c: Rgb) -> f64 {
    let lin = |v: u8| {
        let v = f64::from(v) / 255.0;
        if v <= 0.040_45 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) }
    };
    0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2])
}

/// Radius of the circle of a cluster of `count` trees, in pixels at scale 1:
/// 11 px for 1 tree, plus 4.5 px per factor of ten (15.5 px at 10, 24.5 px
/// at 1,000, 38 px at 1,000,000), at most [`MAX_SYMBOL_RADIUS`].
pub fn cluster_radius(count: u32) -> f32 {
    let decades = f64::from(count.max(1)).log10() as f32;
    (CLUSTER_MIN_RADIUS + CLUSTER_RADIUS_PER_DECADE * decades).min(MAX_SYMBOL_RADIUS)
}

/// A count as written on a cluster: plain under 1,000, then thousands and
/// millions with one decimal below ten of them ("1.2k", "9.9M", a zero decimal
/// left out: "1k") and none above ("35k", "999k", "12M"), rounded half up.
/// Rounding never shows 1000 of a unit: 999,500 is "1M".
pub fn abbreviate(count: u32) -> String {
    if count < 1000 {
        return count.to_string();
    }
    let n = u64::from(count);
    for (unit, suffix) in [(1_000u64, 'k'), (1_000_000, 'M')] {
        let tenths = (n * 10 + unit / 2) / unit;
        if tenths < 100 {
            return if tenths % 10 == 0 {
                format!("{}{suffix}", tenths / 10)
            } else {
                format!("{}.{}{suffix}", tenths / 10, tenths % 10)
            };
        }
        let whole = (n + unit / 2) / unit;
        if whole < 1000 || suffix == 'M' {
            return format!("{whole}{suffix}");
        }
    }
    unreachable!("the 'M' unit always returns")
}

/// Renders `marks` onto a transparent square tile of `256 × scale` pixels and
/// returns it as a PNG (8-bit RGBA, non-interlaced, fast compression).
///
/// `scale` is 1 for ordinary tiles and 2 for `@2x` ones; 0 is taken as 1 and
/// values above [`MAX_SCALE`] as that. All sizes (dot radius, outline, text)
/// are multiplied by it, so an `@2x` tile looks like the `1x` one, only sharper.
pub fn render_png(marks: &[Mark], scale: u32) -> Vec<u8> {
    let scale = scale.clamp(1, MAX_SCALE);
    let canvas = draw(marks, scale);
    if !canvas.drawn {
        return empty_png(scale);
    }
    encode_png(&canvas.into_straight(), TILE_SIZE * scale, png::DeflateCompression::FdeflateUltraFast, png::Filter::Up)
}

/// The fully transparent tile at `scale`, which is common (no trees in
/// view): compressed hard once per process (about 0.3 kB at scale 1 and
/// 1.1 kB at 2, against 2 and 6 kB with the fast settings), then copied.
fn empty_png(scale: u32) -> Vec<u8> {
    static EMPTY: [OnceLock<Vec<u8>>; MAX_SCALE as usize] = [const { OnceLock::new() }; MAX_SCALE as usize];
    let side = TILE_SIZE * scale;
    EMPTY[(scale - 1) as usize]
        .get_or_init(|| {
            let pixels = vec![0; (side * side * 4) as usize];
            encode_png(&pixels, side, png::DeflateCompression::Level(9), png::Filter::NoFilter)
        })
        .clone()
}

/// Renders like [`render_png`] but returns the raw pixels: `(256 × scale)²`
/// RGBA quadruples (straight, not premultiplied, alpha), row by row from the
/// top. `scale` is clamped the same way.
pub fn render_rgba(marks: &[Mark], scale: u32) -> Vec<u8> {
    draw(marks, scale.clamp(1, MAX_SCALE)).into_straight()
}

/// Draws `marks` at `scale` (already clamped).
fn draw(marks: &[Mark], scale: u32) -> Canvas {
    let mut canvas = Canvas::new((TILE_SIZE * scale) as usize);
    let s = scale as f32;
    let side = canvas.size as f64;
    // f64 → f32 after scaling to pixels; far-away marks are skipped before
    // that, so no symbol coordinate ever gets large.
    let place = |x: f64, y: f64, reach: f32| -> Option<(f32, f32)> {
        let (px, py) = (x * side, y * side);
        let reach = f64::from(reach) + 2.0;
        let inside = |v: f64| v.is_finite() && v > -reach && v < side + reach;
        (inside(px) && inside(py)).then_some((px as f32, py as f32))
    };
    for mark in marks {
        if let Mark::Tree { x, y, health } = *mark {
            if let Some((cx, cy)) = place(x, y, TREE_RADIUS * s) {
                canvas.dot(cx, cy, s, health);
            }
        }
    }
    for mark in marks {
        if let Mark::Cluster { x, y, count, counts } = *mark {
            let radius = cluster_radius(count) * s;
            if let Some((cx, cy)) = place(x, y, radius) {
                canvas.cluster(cx, cy, radius, s, count, counts);
            }
        }
    }
    canvas
}

/// Encodes square RGBA pixels as a PNG. Tiles with marks use fast settings:
/// the `Up` filter and fdeflate's ultra-fast DEFLATE (the `png` crate's
/// `Compression::Fastest`), about 0.2 ms for a 256 px tile and 0.7 ms for a
/// 512 px one. Zlib level 1 would make them about 30% smaller but take
/// 5–8 times as long.
fn encode_png(pixels: &[u8], side: u32, deflate: png::DeflateCompression, filter: png::Filter) -> Vec<u8> {
    let mut out = Vec::with_capacity(pixels.len() / 8 + 1024);
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_deflate_compression(deflate);
    encoder.set_filter(filter);
    // Writing to a Vec cannot fail, and the buffer has exactly side² pixels,
    // so none of these errors can happen.
    let mut writer = encoder.write_header().expect("PNG header into a Vec");
    writer.write_image_data(pixels).expect("PNG data of the right size into a Vec");
    writer.finish().expect("PNG end into a Vec");
    out
}

/// A darker shade of `c` (60% of each channel), for outlines.
fn darker(c: Rgb) -> Rgb {
    c.map(|v| ((u16::from(v) * 3) / 5) as u8)
}

/// Coverage of a pixel by a shape whose edge is `signed` pixels away from the
/// pixel centre (positive inside): a one-pixel-wide linear ramp, which is the
/// area of a pixel cut by a straight edge through it at 0°.
#[inline]
fn coverage(signed: f32) -> f32 {
    (signed + 0.5).clamp(0.0, 1.0)
}

/// A premultiplied RGBA colour on the 0..255 scale: the colour channels are
/// already multiplied by the opacity.
#[derive(Clone, Copy)]
struct Premul([f32; 4]);

impl Premul {
    const CLEAR: Premul = Premul([0.0; 4]);

    /// `c` at opacity `a` (`0..=1`).
    #[inline]
    fn of(c: Rgb, a: f32) -> Premul {
        Premul([f32::from(c[0]) * a, f32::from(c[1]) * a, f32::from(c[2]) * a, 255.0 * a])
    }

    #[inline]
    fn add(self, o: Premul) -> Premul {
        let (a, b) = (self.0, o.0);
        Premul([a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]])
    }

    /// Rounded to 8 bits; a colour channel never exceeds the alpha (both
    /// round the same way from a colour at most 255 times the opacity).
    #[inline]
    fn to_rgba(self) -> Rgba {
        // Adding 2^23 leaves the value, rounded to the nearest integer, in
        // the low mantissa bits: cheaper than a saturating `as` cast.
        self.0.map(|v| ((v.clamp(0.0, 255.0) + 8_388_608.0).to_bits() & 0xff) as u8)
    }
}

/// The pixels being drawn: premultiplied RGBA, 8 bits per channel, so
/// compositing needs no division; [`Canvas::into_straight`] converts to the
/// straight alpha PNG wants at the end.
struct Canvas {
    size: usize,
    pixels: Vec<u8>,
    /// Whether any pixel has been painted.
    drawn: bool,
    /// Tree dots rendered so far, by health and quarter-pixel phase.
    dots: HashMap<DotKey, Sprite>,
    /// Glyphs rendered so far.
    glyphs: HashMap<GlyphKey, Sprite>,
}

/// Key of a rendered tree dot: health, then the centre's horizontal and
/// vertical phase in quarter pixels (`0..4`).
type DotKey = (Health, u8, u8);

/// Key of a rendered glyph: the character, its size in 1/8 px per font unit,
/// its horizontal phase in half pixels (0 or 1) and whether it is dark.
type GlyphKey = (char, u16, u8, bool);

/// Premultiplied RGBA, 8 bits per channel.
type Rgba = [u8; 4];

/// `dst` with `src` composited over it (source-over, both premultiplied).
#[inline]
fn over(dst: &mut [u8], src: Rgba) {
    let keep = 255 - u32::from(src[3]);
    for (d, s) in dst.iter_mut().zip(src) {
        // d · keep / 255, rounded, without a division.
        let x = u32::from(*d) * keep + 128;
        *d = s.saturating_add(((x + (x >> 8)) >> 8) as u8);
    }
}

/// A symbol rendered once and stamped many times: premultiplied RGBA cells,
/// cell `(0, 0)` lying `(x0, y0)` pixels from the pixel it is anchored at.
struct Sprite {
    x0: isize,
    y0: isize,
    w: usize,
    h: usize,
    cells: Vec<Rgba>,
}

impl Sprite {
    /// Renders `w × h` cells; `shade` gets each cell centre's offset from the
    /// anchor pixel's top-left corner.
    fn render(x0: isize, y0: isize, w: usize, h: usize, mut shade: impl FnMut(f32, f32) -> Premul) -> Self {
        let mut cells = Vec::with_capacity(w * h);
        for row in 0..h {
            let y = (row as isize + y0) as f32 + 0.5;
            for col in 0..w {
                cells.push(shade((col as isize + x0) as f32 + 0.5, y).to_rgba());
            }
        }
        Self { x0, y0, w, h, cells }
    }
}

/// Splits a pixel coordinate into the pixel and a phase in `steps` steps
/// per pixel: `(pixel, phase)` with the coordinate ≈ `pixel + phase / steps`.
#[inline]
fn snap(v: f32, steps: f32) -> (isize, u8) {
    let q = (v * steps).round();
    // Coordinates stay within a few hundred pixels of the canvas (see `draw`).
    ((q / steps).floor() as isize, q.rem_euclid(steps) as u8)
}

impl Canvas {
    fn new(size: usize) -> Self {
        Self { size, pixels: vec![0; size * size * 4], drawn: false, dots: HashMap::new(), glyphs: HashMap::new() }
    }

    /// Pixel columns or rows whose centres can be within `reach` of `c`
    /// (pixel coordinates), within the canvas.
    #[inline]
    fn span(&self, c: f32, reach: f32) -> Range<usize> {
        // A pixel `i` has its centre at `i + 0.5`. Inputs are finite and
        // within a few hundred pixels of the canvas (see `draw`); the casts
        // saturate at 0 anyway.
        let start = (c - reach - 0.5).floor().max(0.0) as usize;
        let end = ((c + reach + 0.5).ceil().max(0.0) as usize).min(self.size);
        start..end.max(start)
    }

    /// Pixels of a row at `dy2` (squared) from a centre in column `cx` whose
    /// centres lie within `radius` of it, clipped to the canvas.
    #[inline]
    fn chord(&self, cx: f32, dy2: f32, radius: f32) -> Range<usize> {
        let r2 = radius * radius - dy2;
        if r2 <= 0.0 {
            return 0..0;
        }
        let half = r2.sqrt();
        // Centres x + 0.5 in [cx - half, cx + half].
        let start = (cx - half - 0.5).ceil().max(0.0) as usize;
        let end = (((cx + half - 0.5).floor() + 1.0).max(0.0) as usize).min(self.size);
        start.min(end)..end
    }

    /// Composites `src` over the pixel at `(x, y)`.
    #[inline]
    fn blend(&mut self, x: usize, y: usize, src: Rgba) {
        if src[3] == 0 {
            return;
        }
        self.drawn = true;
        let i = (y * self.size + x) * 4;
        if let Some(px) = self.pixels.get_mut(i..i + 4) {
            if src[3] == 255 { px.copy_from_slice(&src) } else { over(px, src) }
        }
    }

    /// The pixels with straight alpha, as PNG wants them.
    fn into_straight(mut self) -> Vec<u8> {
        for px in self.pixels.chunks_exact_mut(4) {
            let a = px[3];
            if a != 0 && a != 255 {
                let k = 255.0 / f32::from(a);
                for c in &mut px[..3] {
                    *c = (f32::from(*c) * k + 0.5).min(255.0) as u8;
                }
            }
        }
        self.pixels
    }

    /// Paints pixels `xs` of row `y` opaque `colour`.
    #[inline]
    fn solid_run(&mut self, y: usize, xs: Range<usize>, colour: Rgb) {
        if xs.is_empty() {
            return;
        }
        self.drawn = true;
        let row = y * self.size * 4;
        let rgba = [colour[0], colour[1], colour[2], 255];
        for px in self.pixels[row + xs.start * 4..row + xs.end * 4].chunks_exact_mut(4) {
            px.copy_from_slice(&rgba);
        }
    }

    /// Composites `sprite` anchored at pixel `(ax, ay)`, clipped to the canvas.
    fn stamp(&mut self, sprite: &Sprite, ax: isize, ay: isize) {
        let size = self.size as isize;
        let (left, top) = (ax + sprite.x0, ay + sprite.y0);
        let cols = (-left).max(0)..(size - left).min(sprite.w as isize);
        let rows = (-top).max(0)..(size - top).min(sprite.h as isize);
        if cols.is_empty() || rows.is_empty() {
            return;
        }
        // The ranges are non-negative and within both the sprite and the canvas.
        let (c0, c1) = (cols.start as usize, cols.end as usize);
        for row in rows.start as usize..rows.end as usize {
            let y = (top + row as isize) as usize;
            let start = (y * self.size + (left + c0 as isize) as usize) * 4;
            let dst = &mut self.pixels[start..start + (c1 - c0) * 4];
            let src = &sprite.cells[row * sprite.w + c0..row * sprite.w + c1];
            for (px, &cell) in dst.chunks_exact_mut(4).zip(src) {
                match cell[3] {
                    0 => continue,
                    255 => px.copy_from_slice(&cell),
                    _ => over(px, cell),
                }
                self.drawn = true;
            }
        }
    }

    /// A tree dot centred at `(cx, cy)`, `s` the scale. The centre is
    /// rounded to a quarter pixel, so at most 16 renderings per health are
    /// made per tile and then stamped.
    fn dot(&mut self, cx: f32, cy: f32, s: f32, health: Health) {
        let ((ax, qx), (ay, qy)) = (snap(cx, 4.0), snap(cy, 4.0));
        let key = (health, qx, qy);
        // Taken out of `self` while stamping, which needs `self` mutably.
        let mut dots = std::mem::take(&mut self.dots);
        let sprite = dots.entry(key).or_insert_with(|| {
            let (outer, inner) = (TREE_RADIUS * s, (TREE_RADIUS - TREE_OUTLINE) * s);
            let (fill, outline) = (health_color(health), darker(health_color(health)));
            let (fx, fy) = (f32::from(qx) / 4.0, f32::from(qy) / 4.0);
            let pad = (outer + 0.5).ceil() as isize + 1;
            let side = (2 * pad + 1) as usize;
            Sprite::render(-pad, -pad, side, side, |x, y| {
                let d = (x - fx).hypot(y - fy);
                let (a_outer, a_inner) = (coverage(outer - d), coverage(inner - d));
                Premul::of(fill, a_inner).add(Premul::of(outline, a_outer - a_inner))
            })
        });
        self.stamp(sprite, ax, ay);
        self.dots = dots;
    }

    /// A cluster symbol of outer radius `radius` (pixels) at `(cx, cy)`;
    /// `s` is the scale, for the fixed-width parts.
    fn cluster(&mut self, cx: f32, cy: f32, radius: f32, s: f32, count: u32, counts: [u32; 4]) {
        let fill = cluster_fill(counts);
        let ring_inner = radius - RING_WIDTH * s;
        let fill_radius = ring_inner - RING_GAP * s;
        let arcs = Arcs::new(counts);
        // Pixels whose centre is this close to the centre are plain fill
        // (full coverage by the fill disc), painted as runs...
        let solid = (fill_radius - 0.5).max(0.0);
        // ...and those between these distances are fully inside the ring.
        let (ring_lo, ring_hi) = (ring_inner + 0.5, radius - 0.5);
        for y in self.span(cy, radius) {
            let dy = y as f32 + 0.5 - cy;
            let dy2 = dy * dy;
            let all = self.chord(cx, dy2, radius + 0.5);
            let inner = self.chord(cx, dy2, solid);
            let inner = if inner.is_empty() { all.end..all.end } else { inner };
            self.solid_run(y, inner.clone(), fill);
            for x in (all.start..inner.start).chain(inner.end..all.end) {
                let dx = x as f32 + 0.5 - cx;
                let d = (dx * dx + dy2).sqrt();
                if d >= ring_lo && d <= ring_hi {
                    self.blend(x, y, arcs.opaque(dx, dy, d));
                    continue;
                }
                let a_outer = coverage(radius - d);
                let a_ring = coverage(ring_inner - d);
                let a_fill = coverage(fill_radius - d);
                let mut c = Premul::of(fill, a_fill).add(Premul::of(TEXT_LIGHT, a_ring - a_fill));
                if a_outer > a_ring {
                    c = c.add(arcs.colour(dx, dy, d, a_outer - a_ring));
                }
                self.blend(x, y, c.to_rgba());
            }
        }
        self.label((cx, cy), radius, fill_radius, s, &abbreviate(count), label_color(fill));
    }

    /// Writes `text` centred on `(cx, cy)` in the digit font, sized for a
    /// cluster of radius `radius` but shrunk if needed to fit in a disc of
    /// radius `room`.
    ///
    /// Glyphs are placed on a half-pixel grid horizontally and a whole-pixel
    /// one vertically, and their size on a 1/8 px grid, so each (glyph,
    /// size, phase, colour) is rendered once per tile and then stamped.
    fn label(&mut self, (cx, cy): (f32, f32), radius: f32, room: f32, s: f32, text: &str, colour: Rgb) {
        let glyphs: Vec<(char, &Glyph)> = text.chars().filter_map(|c| Some((c, font::glyph(c)?))).collect();
        if glyphs.is_empty() {
            return;
        }
        let advance: f32 = glyphs.iter().map(|(_, g)| g.advance).sum::<f32>() - font::SPACING;
        // Ink extent in font units, strokes included.
        let (w, h) = (advance + font::STROKE, font::CAP_HEIGHT + font::STROKE);
        // The label box must fit in the disc with a margin: half-diagonal ≤ room - margin.
        let margin = s;
        let fit = (room - margin).max(0.0) / (w * w + h * h).sqrt() * 2.0;
        // Text grows with the circle, from 1.15 to 1.6 px per font unit at scale 1.
        let unit = (font::UNIT_PER_RADIUS * radius / s).clamp(font::MIN_UNIT, font::MAX_UNIT) * s;
        let eighths = (unit.min(fit) * 8.0).floor();
        let unit = eighths / 8.0;
        if unit * font::CAP_HEIGHT < 4.0 * s {
            return; // Too small to read.
        }
        let mut pen = cx - advance * unit / 2.0;
        let (top, _) = snap(cy - font::CAP_HEIGHT * unit / 2.0, 1.0);
        let dark = colour == TEXT_DARK;
        // Taken out of `self` while stamping, which needs `self` mutably.
        let mut cache = std::mem::take(&mut self.glyphs);
        for (c, glyph) in glyphs {
            let (left, phase) = snap(pen, 2.0);
            let key = (c, eighths as u16, phase, dark);
            let sprite = cache.entry(key).or_insert_with(|| {
                let half_stroke = font::STROKE * unit / 2.0;
                let pad = half_stroke.ceil() as isize + 1;
                let w = (glyph.width * unit).ceil() as usize + 2 * pad as usize + 1;
                let h = (font::CAP_HEIGHT * unit).ceil() as usize + 2 * pad as usize + 1;
                let phase = f32::from(phase) / 2.0;
                Sprite::render(-pad, -pad, w, h, |x, y| {
                    let d = glyph.distance((x - phase) / unit, y / unit) * unit;
                    Premul::of(colour, coverage(half_stroke - d))
                })
            });
            self.stamp(sprite, left, top);
            pen += glyph.advance * unit;
        }
        self.glyphs = cache;
    }
}

/// The health-share arcs of a cluster's ring, as turns (`0..1`) clockwise
/// from 12 o'clock.
struct Arcs {
    /// `(start, end, colour)` of each non-empty arc.
    arcs: Vec<(f32, f32, Rgb)>,
}

impl Arcs {
    fn new(counts: [u32; 4]) -> Self {
        let total: u64 = counts.iter().map(|c| u64::from(*c)).sum();
        if total == 0 {
            return Self { arcs: vec![(0.0, 1.0, DEAD)] };
        }
        let mut arcs = Vec::with_capacity(4);
        let mut so_far = 0u64;
        for (n, health) in counts.iter().zip(Health::ALL) {
            if *n == 0 {
                continue;
            }
            let start = so_far as f64 / total as f64;
            so_far += u64::from(*n);
            let end = so_far as f64 / total as f64;
            arcs.push((start as f32, end as f32, health_color(health)));
        }
        Self { arcs }
    }

    /// The ring's colour for a pixel fully inside the ring, at `(dx, dy)`
    /// from the centre and `d` away; see [`Arcs::colour`].
    #[inline]
    fn opaque(&self, dx: f32, dy: f32, d: f32) -> Rgba {
        if let [(_, _, [r, g, b])] = self.arcs[..] {
            return [r, g, b, 255];
        }
        self.colour(dx, dy, d, 1.0).to_rgba()
    }

    /// The ring's colour at opacity `alpha` for the pixel at `(dx, dy)` from
    /// the centre, `d` away: the arcs' colours weighted by how much of a
    /// one-pixel window along the arc each covers, so arc ends are smooth.
    #[inline]
    fn colour(&self, dx: f32, dy: f32, d: f32, alpha: f32) -> Premul {
        if let [(_, _, only)] = self.arcs[..] {
            return Premul::of(only, alpha);
        }
        // Turns clockwise from up (screen y grows downward).
        let t = atan2(dx, -dy) / std::f32::consts::TAU;
        let t = if t < 0.0 { t + 1.0 } else { t };
        // Half a pixel, in turns, at this distance.
        let half = 0.5 / (std::f32::consts::TAU * d.max(0.5));
        let (lo, hi) = (t - half, t + half);
        // Usually the window lies inside one arc: its colour, no mixing.
        if let Some(&(_, _, colour)) = self.arcs.iter().find(|(start, end, _)| lo >= *start && hi <= *end) {
            return Premul::of(colour, alpha);
        }
        let mut c = Premul::CLEAR;
        for &(start, end, colour) in &self.arcs {
            // The window may wrap past 0 or 1: also test the arc shifted a turn.
            let overlap = |s: f32, e: f32| (hi.min(e) - lo.max(s)).max(0.0);
            let w = overlap(start, end) + overlap(start - 1.0, end - 1.0) + overlap(start + 1.0, end + 1.0);
            if w > 0.0 {
                c = c.add(Premul::of(colour, alpha * (w / (2.0 * half)).min(1.0)));
            }
        }
        c
    }
}

/// `y.atan2(x)` to within a few 1e-6 radians (an odd polynomial of degree
/// 11 on one octant), several times faster than the libm one and the same on
/// every platform.
#[inline]
fn atan2(y: f32, x: f32) -> f32 {
    use std::f32::consts::{FRAC_PI_2, PI};
    let (ax, ay) = (x.abs(), y.abs());
    let big = ax.max(ay);
    if big == 0.0 {
        return 0.0;
    }
    let a = ax.min(ay) / big;
    let s = a * a;
    let mut r = a
        * (0.999_977_26
            + s * (-0.332_623_47 + s * (0.193_543_46 + s * (-0.116_432_87 + s * (0.052_653_32 + s * -0.011_721_2)))));
    if ay > ax {
        r = FRAC_PI_2 - r;
    }
    if x < 0.0 {
        r = PI - r;
    }
    if y < 0.0 { -r } else { r }
}

/// A tiny stroke font for cluster labels: the digits, '.', 'k' and 'M' only,
/// each a few polylines on a grid 8 units high (y down, baseline at 8),
/// drawn with round caps and joins of width [`font::STROKE`].
mod font {
    /// Size of one font unit, in pixels at scale 1, per pixel of cluster radius...
    pub(super) const UNIT_PER_RADIUS: f32 = 0.045;
    /// ...but at least this (a cap height of 9.2 px)...
    pub(super) const MIN_UNIT: f32 = 1.15;
    /// ...and at most this (12.8 px).
    pub(super) const MAX_UNIT: f32 = 1.6;
    /// Height of digits and capitals, in font units.
    pub(super) const CAP_HEIGHT: f32 = 8.0;
    /// Stroke width, in font units.
    pub(super) const STROKE: f32 = 1.6;
    /// Space between glyphs, in font units (included in each advance).
    pub(super) const SPACING: f32 = 1.9;

    /// One character: its strokes, ink width and advance.
    pub(super) struct Glyph {
        pub(super) width: f32,
        pub(super) advance: f32,
        strokes: &'static [&'static [(f32, f32)]],
    }

    impl Glyph {
        const fn new(width: f32, strokes: &'static [&'static [(f32, f32)]]) -> Self {
            Self { width, advance: width + SPACING, strokes }
        }

        /// Distance from `(x, y)` (font units) to the nearest stroke centreline.
        #[inline]
        pub(super) fn distance(&self, x: f32, y: f32) -> f32 {
            let mut best = f32::INFINITY;
            for line in self.strokes {
                if let [p] = line[..] {
                    best = best.min(segment_distance2(x, y, p, p, best));
                }
                for w in line.windows(2) {
                    best = best.min(segment_distance2(x, y, w[0], w[1], best));
                }
            }
            best.sqrt()
        }
    }

    /// Squared distance from `(x, y)` to the segment `a`–`b`, or anything
    /// not below `best` when the segment's bounding box is already that far.
    #[inline]
    fn segment_distance2(x: f32, y: f32, (ax, ay): (f32, f32), (bx, by): (f32, f32), best: f32) -> f32 {
        let gap_x = (ax.min(bx) - x).max(x - ax.max(bx)).max(0.0);
        let gap_y = (ay.min(by) - y).max(y - ay.max(by)).max(0.0);
        if gap_x * gap_x + gap_y * gap_y >= best {
            return best;
        }
        let (ux, uy) = (bx - ax, by - ay);
        let (vx, vy) = (x - ax, y - ay);
        let len2 = ux * ux + uy * uy;
        let t = if len2 > 0.0 { ((vx * ux + vy * uy) / len2).clamp(0.0, 1.0) } else { 0.0 };
        let (ex, ey) = (vx - t * ux, vy - t * uy);
        ex * ex + ey * ey
    }

    const ZERO: Glyph = Glyph::new(
        4.0,
        &[&[
            (1.2, 0.0),
            (2.8, 0.0),
            (4.0, 1.3),
            (4.0, 6.7),
            (2.8, 8.0),
            (1.2, 8.0),
            (0.0, 6.7),
            (0.0, 1.3),
            (1.2, 0.0),
        ]],
    );
    const ONE: Glyph = Glyph::new(3.0, &[&[(0.3, 1.8), (2.2, 0.0), (2.2, 8.0)]]);
    const TWO: Glyph =
        Glyph::new(4.0, &[&[(0.0, 1.5), (1.2, 0.0), (2.8, 0.0), (4.0, 1.3), (4.0, 2.9), (0.0, 8.0), (4.1, 8.0)]]);
    const THREE: Glyph = Glyph::new(
        4.0,
        &[
            &[(0.0, 1.0), (1.1, 0.0), (2.8, 0.0), (4.0, 1.1), (4.0, 2.6), (2.9, 3.8), (1.5, 3.8)],
            &[(2.9, 3.8), (4.0, 5.0), (4.0, 6.8), (2.8, 8.0), (1.1, 8.0), (0.0, 7.0)],
        ],
    );
    const FOUR: Glyph = Glyph::new(4.2, &[&[(3.2, 8.0), (3.2, 0.0), (0.0, 5.6), (4.2, 5.6)]]);
    const FIVE: Glyph = Glyph::new(
        4.0,
        &[&[
            (3.9, 0.0),
            (0.4, 0.0),
            (0.1, 3.7),
            (1.2, 3.1),
            (2.8, 3.1),
            (4.0, 4.3),
            (4.0, 6.8),
            (2.8, 8.0),
            (1.1, 8.0),
            (0.0, 7.0),
        ]],
    );
    const SIX: Glyph = Glyph::new(
        4.0,
        &[&[
            (3.7, 0.7),
            (2.8, 0.0),
            (1.2, 0.0),
            (0.0, 1.3),
            (0.0, 6.7),
            (1.2, 8.0),
            (2.8, 8.0),
            (4.0, 6.7),
            (4.0, 4.8),
            (2.8, 3.6),
            (1.2, 3.6),
            (0.0, 4.8),
        ]],
    );
    const SEVEN: Glyph = Glyph::new(4.0, &[&[(0.0, 0.0), (4.0, 0.0), (1.4, 8.0)]]);
    const EIGHT: Glyph = Glyph::new(
        4.0,
        &[&[
            (1.2, 3.7),
            (0.2, 2.7),
            (0.2, 1.1),
            (1.2, 0.0),
            (2.8, 0.0),
            (3.8, 1.1),
            (3.8, 2.7),
            (2.8, 3.7),
            (1.2, 3.7),
            (0.0, 4.9),
            (0.0, 6.8),
            (1.2, 8.0),
            (2.8, 8.0),
            (4.0, 6.8),
            (4.0, 4.9),
            (2.8, 3.7),
        ]],
    );
    const NINE: Glyph = Glyph::new(
        4.0,
        &[&[
            (0.3, 7.3),
            (1.2, 8.0),
            (2.8, 8.0),
            (4.0, 6.7),
            (4.0, 1.3),
            (2.8, 0.0),
            (1.2, 0.0),
            (0.0, 1.3),
            (0.0, 3.2),
            (1.2, 4.4),
            (2.8, 4.4),
            (4.0, 3.2),
        ]],
    );
    const DOT: Glyph = Glyph::new(0.6, &[&[(0.3, 7.6)]]);
    const K: Glyph =
        Glyph::new(3.8, &[&[(0.0, 0.0), (0.0, 8.0)], &[(3.6, 2.8), (0.0, 6.0)], &[(1.4, 4.8), (3.8, 8.0)]]);
    const M: Glyph = Glyph::new(5.2, &[&[(0.0, 8.0), (0.0, 0.0), (2.6, 5.6), (5.2, 0.0), (5.2, 8.0)]]);

    /// The glyph of `c`, `None` for a character the font does not have.
    pub(super) fn glyph(c: char) -> Option<&'static Glyph> {
        Some(match c {
            '0' => &ZERO,
            '1' => &ONE,
            '2' => &TWO,
            '3' => &THREE,
            '4' => &FOUR,
            '5' => &FIVE,
            '6' => &SIX,
            '7' => &SEVEN,
            '8' => &EIGHT,
            '9' => &NINE,
            '.' => &DOT,
            'k' => &K,
            'M' => &M,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abbreviations() {
        let cases = [
            (0, "0"),
            (7, "7"),
            (999, "999"),
            (1000, "1k"),
            (1049, "1k"),
            (1050, "1.1k"),
            (1234, "1.2k"),
            (9949, "9.9k"),
            (9950, "10k"),
            (35_400, "35k"),
            (999_499, "999k"),
            (999_500, "1M"),
            (1_100_000, "1.1M"),
            (9_950_000, "10M"),
            (u32::MAX, "4295M"),
        ];
        for (n, s) in cases {
            assert_eq!(abbreviate(n), s, "{n}");
        }
    }

    #[test]
    fn every_label_character_has_a_glyph() {
        for c in "0123456789.kM".chars() {
            assert!(font::glyph(c).is_some(), "{c}");
        }
    }

    #[test]
    fn fills_and_label_colours() {
        assert_eq!(cluster_fill([91, 0, 9, 0]), GOOD);
        assert_eq!(cluster_fill([90, 0, 5, 5]), FAIR);
        assert_eq!(cluster_fill([70, 0, 29, 0]), FAIR);
        assert_eq!(cluster_fill([70, 0, 0, 30]), POOR);
        assert_eq!(cluster_fill([0; 4]), GOOD);
        assert_eq!(label_color(POOR), TEXT_LIGHT);
        assert_eq!(label_color(FAIR), TEXT_DARK);
        assert_eq!(cluster_radius(1), 11.0);
        assert_eq!(cluster_radius(1000), 24.5);
        assert!(cluster_radius(u32::MAX) <= MAX_SYMBOL_RADIUS);
    }

    #[test]
    fn fast_atan2_is_close() {
        for i in 0..3600 {
            let a = (i as f32 / 10.0 - 180.0).to_radians();
            for r in [0.5f32, 7.0, 300.0] {
                let (y, x) = (a.sin() * r, a.cos() * r);
                assert!((atan2(y, x) - y.atan2(x)).abs() < 1e-5, "{a} {r}: {}", atan2(y, x) - y.atan2(x));
            }
        }
        assert_eq!(atan2(0.0, 0.0), 0.0);
    }
}
