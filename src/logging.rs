//! Logging set-up of the `orchardmap` binary.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Filter used when `RUST_LOG` is not set: informational messages, but only warnings
/// from the database driver and the per-request traces of tower-http.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_http=warn";

/// Installs the global tracing subscriber writing to standard error, filtered by
/// `RUST_LOG` (default [`DEFAULT_FILTER`]): one JSON object per line when `json`
/// (for log collectors), else human-readable lines, coloured only on a terminal.
/// Does nothing if a subscriber is installed already.
pub fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // `try_init` fails only when a subscriber is already set; keep that one.
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).try_init()
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn installing_twice_is_harmless() {
        super::init_logging(true);
        super::init_logging(false);
        tracing::info!(answer = 42, "logged");
    }
}
