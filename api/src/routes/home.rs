//! `GET /about`: a small page that says what this server holds and links to live examples.

use axum::extract::State;
use axum::response::Html;

use crate::AppState;
use crate::pages::escape;

/// The landing page.
pub async fn home(State(state): State<AppState>) -> Html<String> {
    let (count, example) = {
        let set = state.cache.read();
        let example = set.index.iter().next().and_then(|e| set.get(e.id)).map(|t| (*t).clone());
        (set.len(), example)
    };
    let mut links = vec![("/healthz".to_string(), "Tình trạng máy chủ / health".to_string())];
    if let Some(t) = &example {
        let (lon, lat) = (t.location.lon, t.location.lat);
        links.push((format!("/api/trees/{}", t.code), format!("Cây {} / tree by tag code", t.code)));
        links.push((
            format!("/api/trees/nearest?lon={lon:.6}&lat={lat:.6}&k=5"),
            "5 cây gần nhất / 5 nearest trees".into(),
        ));
        links.push((
            format!("/api/trees/within?lon={lon:.6}&lat={lat:.6}&radius_m=30"),
            "Cây trong bán kính 30 m / trees within 30 m".into(),
        ));
        links.push((
            format!(
                "/api/trees?bbox={:.5},{:.5},{:.5},{:.5}&limit=20",
                lon - 0.002,
                lat - 0.002,
                lon + 0.002,
                lat + 0.002
            ),
            "Cây trong khung / trees in a box, paged".into(),
        ));
        links.push((format!("/api/orchards/{}", t.orchard_id), format!("Vườn {} / orchard", t.orchard_id)));
    }
    let items: String = links
        .iter()
        .map(|(href, label)| {
            format!("<li><a href=\"{}\">{}</a> <code>{}</code></li>\n", escape(href), escape(label), escape(href))
        })
        .collect();
    Html(format!(
        "<!doctype html>\n<html lang=\"vi\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>orchardmap: bản đồ cây xanh</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:42rem;margin:1rem auto;padding:0 1rem;line-height:1.5}}code{{color:#555;font-size:.85em}}</style>\
</head><body><h1>orchardmap</h1>\
<p>Bản đồ số vườn sầu riêng, từng cây một. <em>Durian orchards mapped tree by tree.</em></p>\
<p><strong>{count}</strong> cây đang được phục vụ / trees served.</p><ul>\n{items}</ul></body></html>\n"
    ))
}
