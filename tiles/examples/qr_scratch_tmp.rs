//! tmp
use std::time::Instant;
use tiles::print::*;
fn main() {
    let labels: Vec<Label> = (0..500)
        .map(|i| Label {
            url: format!("https://orchardmap.example.vn/414/9520123456788/254/K{i:06}?8030={}", "Ab3-_x".repeat(14)),
            code: format!("K{i:06}"),
            lines: vec!["Sầu riêng Ri6".into(), "Vườn ông Y Blang Niê, Đắk Lắk".into()],
        })
        .collect();
    let opts = SheetOptions { kind: LabelKind::TreeTag, ec: None, title: Some("Vườn".into()) };
    let t = Instant::now();
    for l in &labels {
        encode(&l.url, EcLevel::Q).unwrap();
    }
    println!("encode {:?}", t.elapsed());
    let t = Instant::now();
    let s = sheet_svg(&labels, &opts).unwrap();
    println!("svg {:?} {} bytes", t.elapsed(), s.len());
    let t = Instant::now();
    let p = sheet_pdf(&labels, &opts).unwrap();
    println!("pdf {:?} {} bytes", t.elapsed(), p.len());
}
