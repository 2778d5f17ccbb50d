//! Writes the orchardmap sample data: `cargo run -p orchardmap-sample -- --out data`.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: orchardmap-sample [--out DIR] [--seed N]\n\
\n\
Writes orchards.geojson, trees.csv and trees.geojson into DIR (default: data).\n\
The committed sample uses the default seed.";

fn main() -> ExitCode {
    let mut out = PathBuf::from("data");
    let mut seed = orchardmap_sample::SEED;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" | "-o" => match args.next() {
                Some(dir) => out = PathBuf::from(dir),
                None => return usage_error("--out needs a directory"),
            },
            "--seed" => match args.next().and_then(|s| s.parse().ok()) {
                Some(s) => seed = s,
                None => return usage_error("--seed needs a whole number"),
            },
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return usage_error(&format!("unknown argument {other:?}")),
        }
    }
    let sample = orchardmap_sample::generate_with_seed(seed);
    if let Err(e) = sample.write_to(&out) {
        eprintln!("orchardmap-sample: cannot write to {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    print!("{}", sample.summary());
    println!("written to {}", out.display());
    ExitCode::SUCCESS
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("orchardmap-sample: {msg}\n{USAGE}");
    ExitCode::from(2)
}
