#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Raster tiles, checked by decoding the PNG bytes `render_png` produces.
//!
//! `RASTER_SAMPLE=/tmp/raster-sample.png cargo test -p orchardmap-tiles --test raster sample`
//! also writes a sample `@2x` tile there, to look at.

use std::io::Cursor;

use geo_core::{Health, LonLat};
use tiles::raster::{
    self, DEAD, FAIR, GOOD, MAX_SYMBOL_RADIUS, Mark, POOR, TEXT_DARK, TEXT_LIGHT, cluster_fill, cluster_radius,
    health_color, label_color, render_png, render_rgba,
};

/// A decoded RGBA image.
struct Image {
    side: usize,
    pixels: Vec<u8>,
}

impl Image {
    fn at(&self, x: usize, y: usize) -> [u8; 4] {
        let i = (y * self.side + x) * 4;
        self.pixels[i..i + 4].try_into().unwrap()
    }

    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let p = self.at(x, y);
        [p[0], p[1], p[2]]
    }
}

fn decode(png_bytes: &[u8]) -> Image {
    let decoder = png::Decoder::new(Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a valid PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).expect("valid PNG data");
    assert_eq!(info.color_type, png::ColorType::Rgba);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    assert_eq!(info.width, info.height);
    pixels.truncate(info.buffer_size());
    Image { side: info.width as usize, pixels }
}

/// Tile fraction of the centre of pixel `p` in a tile `side` pixels wide.
fn centre(p: usize, side: usize) -> f64 {
    (p as f64 + 0.5) / side as f64
}

fn tree(px: usize, py: usize, side: usize, health: Health) -> Mark {
    Mark::Tree { x: centre(px, side), y: centre(py, side), health }
}

#[test]
fn sizes_follow_the_scale() {
    for (scale, side) in [(1, 256), (2, 512), (0, 256), (9, 1024)] {
        let img = decode(&render_png(&[Mark::Tree { x: 0.5, y: 0.5, health: Health::Good }], scale));
        assert_eq!(img.side, side, "scale {scale}");
    }
}

#[test]
fn empty_input_is_a_valid_transparent_png() {
    for scale in [1, 2] {
        let bytes = render_png(&[], scale);
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let img = decode(&bytes);
        assert_eq!(img.side, 256 * scale as usize);
        assert!(img.pixels.iter().all(|b| *b == 0));
        // Fast compression still squeezes an empty tile well.
        assert!(bytes.len() < 1_500, "{} bytes", bytes.len());
        eprintln!("empty tile at scale {scale}: {} bytes", bytes.len());
    }
}

#[test]
fn tree_dots_have_their_health_colour_and_soft_edges() {
    for scale in [1usize, 2] {
        let side = 256 * scale;
        let spots = [(40, 40, Health::Good), (100, 40, Health::Fair), (160, 40, Health::Poor), (220, 40, Health::Dead)];
        let marks: Vec<Mark> = spots.iter().map(|&(x, y, h)| tree(x * scale, y * scale, side, h)).collect();
        let img = decode(&render_png(&marks, scale as u32));
        for &(x, y, h) in &spots {
            let (x, y) = (x * scale, y * scale);
            let c = health_color(h);
            assert_eq!(img.at(x, y), [c[0], c[1], c[2], 255], "{h} centre at scale {scale}");
            // The outline, 3 px out, is a darker shade of the fill (60%); at
            // scale 1 that pixel is on the soft rim, at scale 2 inside the outline.
            let edge = img.at(x + 3 * scale, y);
            // (Within rounding: partly transparent pixels lose a little precision.)
            let outline = c.map(|v| ((u16::from(v) * 3) / 5) as u8);
            assert!(edge[..3].iter().zip(outline).all(|(e, o)| e.abs_diff(o) <= 2), "{h} outline {edge:?}");
            assert!(edge[3] >= if scale == 1 { 128 } else { 255 }, "{h} outline {edge:?}");
            // Anti-aliased: partially covered pixels all around the rim.
            let partial = (y - 5 * scale..y + 5 * scale)
                .flat_map(|py| (x - 5 * scale..x + 5 * scale).map(move |px| (px, py)))
                .filter(|&(px, py)| (1..255).contains(&img.at(px, py)[3]))
                .count();
            assert!(partial >= 8 * scale, "{h}: {partial} soft pixels");
            // Transparent a few pixels away.
            assert_eq!(img.at(x + 5 * scale, y), [0; 4]);
            assert_eq!(img.at(x, y + 5 * scale), [0; 4]);
        }
        // Transparent away from marks: every pixel further than the dot radius + 1 from all dots.
        let r = (raster::TREE_RADIUS as f64 + 1.0) * scale as f64;
        for py in 0..side {
            for px in 0..side {
                let near = spots.iter().any(|&(x, y, _)| {
                    let (dx, dy) = (px as f64 - (x * scale) as f64, py as f64 - (y * scale) as f64);
                    dx.hypot(dy) <= r
                });
                if !near {
                    assert_eq!(img.at(px, py), [0; 4], "({px}, {py}) at scale {scale}");
                }
            }
        }
    }
}

#[test]
fn clusters_have_a_fill_a_ring_and_a_label() {
    for scale in [1usize, 2] {
        let side = 256 * scale;
        let (cx, cy) = (128 * scale, 128 * scale);
        // 40% poor or dead: red fill, white text.
        let counts = [500, 100, 300, 100];
        let mark = Mark::Cluster { x: centre(cx, side), y: centre(cy, side), count: 1000, counts };
        let img = decode(&render_png(&[mark], scale as u32));
        let fill = cluster_fill(counts);
        assert_eq!(fill, POOR);
        let text = label_color(fill);
        assert_eq!(text, TEXT_LIGHT);
        let radius_f = f64::from(cluster_radius(1000)) * scale as f64;
        let radius = radius_f as usize;

        // The label "1k" sits in the middle: its box holds text-coloured pixels and fill ones.
        let label_box = (cy - 5 * scale..=cy + 5 * scale)
            .flat_map(|y| (cx - 8 * scale..=cx + 8 * scale).map(move |x| (x, y)))
            .collect::<Vec<_>>();
        // Text pixels: within a few levels of the text colour (strokes are
        // under 2 px wide, so few pixels are covered in full).
        let near = |c: [u8; 3], d: [u8; 3]| c.iter().zip(d).all(|(a, b)| a.abs_diff(b) <= 40);
        let text_px = label_box.iter().filter(|&&(x, y)| near(img.rgb(x, y), text)).count();
        let fill_px = label_box.iter().filter(|&&(x, y)| img.rgb(x, y) == fill).count();
        assert!(text_px >= 10 * scale * scale, "{text_px} text pixels");
        assert!(fill_px >= 20 * scale * scale, "{fill_px} fill pixels");
        // Anti-aliased text: blends between the two as well.
        assert!(label_box.iter().any(|&(x, y)| {
            let c = img.rgb(x, y);
            c != text && c != fill
        }));
        // Opaque across the disc.
        assert!(label_box.iter().all(|&(x, y)| img.at(x, y)[3] == 255));

        // Between the label and the ring: plain fill, left and right.
        for x in [cx - radius / 2, cx + radius / 2] {
            assert_eq!(img.at(x, cy), [fill[0], fill[1], fill[2], 255], "fill at x={x}");
        }
        // The ring, a little inside the edge: good (green) at 12 o'clock, then
        // fair, poor and dead clockwise (50%, 10%, 30%, 10% of the turn).
        // The ring is 3 px wide at scale 1; probe its middle.
        let ring = radius_f - 1.5 * scale as f64;
        let at_turn = |t: f64| {
            let a = t * std::f64::consts::TAU;
            let (x, y) = (cx as f64 + 0.5 + ring * a.sin(), cy as f64 + 0.5 - ring * a.cos());
            img.at(x as usize, y as usize)
        };
        for (t, colour) in [(0.25, GOOD), (0.55, FAIR), (0.75, POOR), (0.95, DEAD)] {
            assert_eq!(at_turn(t), [colour[0], colour[1], colour[2], 255], "ring at {t} turn, scale {scale}");
        }
        // The outer edge is soft, and outside it is transparent.
        let soft = (cy - radius - 2..cy + radius + 2)
            .flat_map(|y| (cx - radius - 2..cx + radius + 2).map(move |x| (x, y)))
            .filter(|&(x, y)| (1..255).contains(&img.at(x, y)[3]))
            .count();
        // A clean rim is about one pixel thick: ~2πr partially covered pixels.
        assert!(soft as f64 > 3.0 * radius_f, "{soft} soft pixels");
        assert_eq!(img.at(cx + radius + 2, cy), [0; 4]);
        assert_eq!(img.at(cx, cy - radius - 2), [0; 4]);
        assert_eq!(img.at(5, 5), [0; 4]);
    }
}

#[test]
fn healthy_clusters_are_green_with_dark_text_and_amber_ones_amber() {
    let side = 256;
    let marks = [
        Mark::Cluster { x: centre(60, side), y: centre(60, side), count: 35_000, counts: [34_000, 900, 50, 50] },
        Mark::Cluster { x: centre(190, side), y: centre(190, side), count: 20, counts: [15, 1, 2, 2] },
    ];
    let img = decode(&render_png(&marks, 1));
    assert_eq!(img.rgb(60 - 15, 60), GOOD);
    assert_eq!(img.rgb(190 - 7, 190), FAIR);
    assert_eq!(label_color(GOOD), TEXT_DARK);
    assert_eq!(label_color(FAIR), TEXT_DARK);
    let near = |c: [u8; 3]| c.iter().zip(TEXT_DARK).all(|(a, b)| a.abs_diff(b) <= 40);
    let dark = |cx: usize, cy: usize| {
        (cy - 4..=cy + 4)
            .flat_map(|y| (cx - 8..=cx + 8).map(move |x| (x, y)))
            .filter(|&(x, y)| near(img.rgb(x, y)))
            .count()
    };
    assert!(dark(60, 60) >= 10, "35k");
    assert!(dark(190, 190) >= 5, "20");
}

#[test]
fn marks_partly_outside_the_tile_are_clipped() {
    let marks = [
        Mark::Tree { x: -0.005, y: 0.5, health: Health::Poor },
        Mark::Tree { x: 1.002, y: 1.002, health: Health::Good },
        Mark::Cluster { x: 0.02, y: -0.05, count: 1_000_000, counts: [1_000_000, 0, 0, 0] },
        Mark::Cluster { x: 1.1, y: 0.5, count: 50_000, counts: [1, 1, 1, 1] },
        // Far away and not finite: nothing drawn, no panic.
        Mark::Cluster { x: 1e300, y: -1e300, count: u32::MAX, counts: [u32::MAX; 4] },
        Mark::Tree { x: f64::NAN, y: 0.5, health: Health::Good },
        Mark::Tree { x: 0.5, y: f64::INFINITY, health: Health::Good },
        Mark::Cluster { x: f64::NEG_INFINITY, y: 0.5, count: 3, counts: [3, 0, 0, 0] },
    ];
    for scale in [1usize, 2] {
        let img = decode(&render_png(&marks, scale as u32));
        let side = 256 * scale;
        // The left dot's right half shows at the left edge.
        let edge = img.at(0, side / 2);
        assert!(edge[3] == 255 && edge[0] > 2 * edge[1], "{edge:?}");
        // The corner dot shows in the bottom-right corner.
        assert!(img.at(side - 1, side - 1)[3] > 0);
        // The big cluster's lower part shows at the top-left; the one beyond the east edge reaches in.
        assert!(img.at(5 * scale, 0)[3] == 255);
        let reach = (cluster_radius(50_000) as f64 - 0.1 * 256.0) * scale as f64;
        assert!(reach > 2.0);
        assert!(img.at(side - 1, side / 2)[3] > 0);
        // Nothing elsewhere: the middle of the tile is empty.
        assert_eq!(img.at(side / 2, side / 2), [0; 4]);
    }
    assert!(MAX_SYMBOL_RADIUS >= cluster_radius(u32::MAX));
    // Marks wholly outside give the empty tile.
    let outside = [
        Mark::Tree { x: -0.02, y: 0.5, health: Health::Good },
        Mark::Cluster { x: 0.5, y: 1.0 + f64::from(MAX_SYMBOL_RADIUS + 1.0) / 256.0, count: u32::MAX, counts: [1; 4] },
    ];
    for scale in [1, 2] {
        assert_eq!(render_png(&outside, scale), render_png(&[], scale));
    }
}

#[test]
fn rendering_is_deterministic() {
    let marks = sample_marks();
    for scale in [1, 2] {
        let a = render_png(&marks, scale);
        assert_eq!(a, render_png(&marks, scale));
        assert_eq!(decode(&a).pixels, render_rgba(&marks, scale));
    }
}

#[test]
fn overlapping_marks_blend_without_panic() {
    // Thousands of dots on top of each other and of clusters: still opaque where covered.
    let mut marks: Vec<Mark> =
        (0..3000).map(|i| Mark::Tree { x: 0.5 + (i % 7) as f64 * 0.001, y: 0.5, health: Health::ALL[i % 4] }).collect();
    marks.push(Mark::Cluster { x: 0.5, y: 0.5, count: 0, counts: [0; 4] });
    let img = decode(&render_png(&marks, 1));
    assert_eq!(img.at(128, 128)[3], 255);
    // The cluster (count 0, drawn like 1) is on top of the trees.
    assert_eq!(img.rgb(128 - 6, 128), GOOD);
}

fn sample_marks() -> Vec<Mark> {
    let tile = tiles::tile_for(LonLat::new(108.05, 12.68), 17).unwrap();
    let b = tile.bounds();
    let mut marks = Vec::new();
    // A planting grid in the left half with a few sick and dead trees.
    for i in 0..12 {
        for j in 0..14 {
            let health = match (i * 7 + j * 3) % 17 {
                0 => Health::Dead,
                1 | 2 => Health::Poor,
                3..=5 => Health::Fair,
                _ => Health::Good,
            };
            let lon = b.min_lon + (b.max_lon - b.min_lon) * (0.03 + i as f64 * 0.037);
            let lat = b.max_lat - (b.max_lat - b.min_lat) * (0.04 + j as f64 * 0.071 + (i % 2) as f64 * 0.02);
            marks.push(Mark::tree_at(tile, LonLat::new(lon, lat), health));
        }
    }
    let clusters: [(f64, f64, [u32; 4]); 7] = [
        (0.62, 0.16, [2, 0, 0, 0]),
        (0.84, 0.14, [20, 4, 12, 6]),
        (0.66, 0.42, [812, 150, 30, 8]),
        (0.88, 0.45, [900, 200, 150, 40]),
        (0.62, 0.76, [28_000, 4_000, 2_000, 1_000]),
        (0.86, 0.80, [600_000, 300_000, 150_000, 50_000]),
        (0.99, 0.99, [3, 2, 2, 1]),
    ];
    for (x, y, counts) in clusters {
        marks.push(Mark::Cluster { x, y, count: counts.iter().sum(), counts });
    }
    marks
}

#[test]
fn sample() {
    let Some(path) = std::env::var_os("RASTER_SAMPLE") else { return };
    std::fs::write(&path, render_png(&sample_marks(), 2)).unwrap();
    let mut one = std::path::PathBuf::from(&path);
    one.set_extension("1x.png");
    let bytes = render_png(&sample_marks(), 1);
    std::fs::write(&one, &bytes).unwrap();
    // The right half of the 1x tile blown up 4× (nearest neighbour) over a
    // light checkerboard, to judge anti-aliasing and the digits pixel by pixel.
    let img = decode(&bytes);
    let (w, h, k) = (128usize, 256usize, 4usize);
    let mut out = vec![0u8; w * k * h * k * 3];
    for y in 0..h * k {
        for x in 0..w * k {
            let p = img.at(128 + x / k, y / k);
            let bg = if ((x / 8) + (y / 8)) % 2 == 0 { 235.0 } else { 250.0 };
            let a = f64::from(p[3]) / 255.0;
            for c in 0..3 {
                out[(y * w * k + x) * 3 + c] = (f64::from(p[c]) * a + bg * (1.0 - a)).round() as u8;
            }
        }
    }
    one.set_extension("zoom.png");
    let mut buf = Vec::new();
    let mut enc = png::Encoder::new(&mut buf, (w * k) as u32, (h * k) as u32);
    enc.set_color(png::ColorType::Rgb);
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(&out).unwrap();
    writer.finish().unwrap();
    std::fs::write(one, buf).unwrap();
}
