//! Writes sample QR codes as PNG files plus `expected.txt` (`file.png<TAB>text` per line), so
//! that an independent decoder can check them, e.g.
//!
//! ```text
//! cargo run -p orchardmap-tiles --example qr_samples -- /tmp/qr
//! cd /tmp/qr && while IFS=$'\t' read -r file text; do
//!     [ "$(zbarimg -q --raw "$file")" = "$text" ] && echo "ok $file" || echo "FAIL $file"
//! done < expected.txt
//! ```
// A panic in a test, bench or example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::PathBuf;

use tiles::print::{EcLevel, LabelKind, qr_png};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: qr_samples OUTDIR")?);
    std::fs::create_dir_all(&dir)?;
    // An Ed25519 signature in base64url (86 characters), as carried by GS1 AI 8030.
    let sig = "Mx2E7aXQb3yJ0n1s-Wd4kq_LpV9cR8tZfH6oGuA5iBmYe2NvKjT7hS0lDrC4gFwP3xUzI1OQa9bn8c7d6e5f4g";
    let samples: [(&str, String, EcLevel, u32); 5] = [
        (
            "tree-tag-q.png",
            "https://orchardmap.example.vn/414/9520123456788/254/K7DW3QX".to_owned(),
            LabelKind::TreeTag.default_ec(),
            8,
        ),
        (
            "fruit-label-m.png",
            format!("http://127.0.0.1:8080/l/LK7DW3QX?8030={sig}"),
            LabelKind::FruitLabel.default_ec(),
            6,
        ),
        (
            "signed-tree-h.png",
            format!("https://orchardmap.example.vn/414/9520123456788/254/K7DW3QX?8030={sig}"),
            EcLevel::H,
            5,
        ),
        (
            "signed-tree-q-3px.png",
            format!("https://orchardmap.example.vn/414/9520123456788/254/K7DW3QX?8030={sig}"),
            EcLevel::Q,
            3,
        ),
        ("vietnamese-l.png", "https://orchardmap.example.vn/vườn/Đắk-Lắk/sầu-riêng-Ri6".to_owned(), EcLevel::L, 8),
    ];
    let mut expected = String::new();
    for (file, text, ec, module_px) in &samples {
        std::fs::write(dir.join(file), qr_png(text, *ec, *module_px)?)?;
        writeln!(expected, "{file}\t{text}")?;
        println!("{file}: level {ec}, {module_px} px per module, {} characters", text.chars().count());
    }
    std::fs::write(dir.join("expected.txt"), expected)?;
    println!("wrote {} samples and expected.txt to {}", samples.len(), dir.display());
    Ok(())
}
