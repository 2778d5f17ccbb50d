//! tmp
use std::time::Instant;
fn main() {
    let url = format!("https://orchardmap.example.vn/414/9520123456788/254/K000001?8030={}", "Ab3-_x".repeat(14));
    let t = Instant::now();
    for _ in 0..200 {
        qrcode::QrCode::with_error_correction_level(&url, qrcode::EcLevel::Q).unwrap();
    }
    println!("qrcode {:?}", t.elapsed() / 200);
    let t = Instant::now();
    for _ in 0..200 {
        tiles::print::encode(&url, tiles::print::EcLevel::Q).unwrap();
    }
    println!("ours {:?}", t.elapsed() / 200);
    let t = Instant::now();
    for _ in 0..200 {
        tiles::print::qr_png(&url, tiles::print::EcLevel::Q, 8).unwrap();
    }
    println!("png {:?}", t.elapsed() / 200);
}
