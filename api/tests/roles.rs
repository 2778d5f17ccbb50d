//! The role matrix: every write endpoint, called by every kind of caller,
//! answers with the status that caller's rights give.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::{World, etag, json, png, send, world};
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Anonymous,
    Admin,
    Volunteer,
    /// The farmer whose orchard (A) the target is in.
    Farmer,
}

const EVERYONE: [Who; 4] = [Who::Anonymous, Who::Farmer, Who::Volunteer, Who::Admin];

fn token(w: &World, who: Who) -> Option<String> {
    match who {
        Who::Anonymous => None,
        Who::Admin => Some(w.admin.clone()),
        Who::Volunteer => Some(w.volunteer.clone()),
        Who::Farmer => Some(w.farmer.clone()),
    }
}

fn multipart_csv(name: &str, csv: &str) -> (String, Vec<u8>) {
    let boundary = "XyZ123boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    );
    (format!("multipart/form-data; boundary={boundary}"), body.into_bytes())
}

#[tokio::test]
async fn every_write_endpoint_with_every_role() {
    let w = world().await;
    let s = &w.state;
    let mut checked = 0;
    for (i, who) in EVERYONE.into_iter().enumerate() {
        let t = token(&w, who);
        let t = t.as_deref();
        let expect = |ok: StatusCode, allowed: bool| {
            if who == Who::Anonymous {
                StatusCode::UNAUTHORIZED
            } else if allowed {
                ok
            } else {
                StatusCode::FORBIDDEN
            }
        };
        let surveyor = matches!(who, Who::Admin | Who::Volunteer);
        let admin = who == Who::Admin;
        let mut check = |what: &str, got: StatusCode, want: StatusCode, body: &serde_json::Value| {
            assert_eq!(got, want, "{what} as {who:?}: {body}");
            checked += 1;
        };

        // Trees.
        let tree_a = w.trees_a[i];
        let tree_b = w.trees_b[i];
        let new_tree = json!({"lon": 108.0505, "lat": 12.6805, "cultivar": "Ri6", "health": "good", "orchard": "DL-A"});
        let r = send(s, "POST", "/api/trees", t, &[("content-type", "application/json")], json(new_tree)).await;
        check("POST /api/trees", r.status, expect(StatusCode::CREATED, surveyor), &r.body);

        let tag = etag(s, tree_a).await;
        let uri = format!("/api/trees/{tree_a}");
        let r = send(s, "PATCH", &uri, t, &[("if-match", &tag)], json(json!({"health": "fair"}))).await;
        check("PATCH health (own orchard)", r.status, expect(StatusCode::OK, true), &r.body);

        let tag = etag(s, tree_a).await;
        let r = send(s, "PATCH", &uri, t, &[("if-match", &tag)], json(json!({"cultivar": "Monthong"}))).await;
        check("PATCH cultivar", r.status, expect(StatusCode::OK, surveyor), &r.body);

        let tag = etag(s, tree_b).await;
        let uri_b = format!("/api/trees/{tree_b}");
        let r = send(s, "PATCH", &uri_b, t, &[("if-match", &tag)], json(json!({"health": "poor"}))).await;
        check("PATCH health (other orchard)", r.status, expect(StatusCode::OK, surveyor), &r.body);

        let record =
            json!({"date": "2026-03-01", "kind": "spray", "product": "Abamectin", "dose": "20 ml/16 l", "phi_days": 7});
        let r = send(s, "POST", &format!("{uri}/records"), t, &[], json(record.clone())).await;
        check("POST record (own orchard)", r.status, expect(StatusCode::CREATED, true), &r.body);
        let r = send(s, "POST", &format!("{uri_b}/records"), t, &[], json(record)).await;
        check("POST record (other orchard)", r.status, expect(StatusCode::CREATED, surveyor), &r.body);

        let r = send(s, "POST", &format!("{uri}/photos"), t, &[("content-type", "image/png")], png()).await;
        check("POST photo (own orchard)", r.status, expect(StatusCode::CREATED, true), &r.body);
        let r = send(s, "POST", &format!("{uri_b}/photos"), t, &[("content-type", "image/png")], png()).await;
        check("POST photo (other orchard)", r.status, expect(StatusCode::CREATED, surveyor), &r.body);

        let victim = w.trees_a[10 + i];
        let tag = etag(s, victim).await;
        let r = send(s, "DELETE", &format!("/api/trees/{victim}?reason=cut"), t, &[("if-match", &tag)], vec![]).await;
        check("DELETE tree", r.status, expect(StatusCode::OK, surveyor), &r.body);

        // Orchards.
        let orchard = json!({"id": format!("DL-NEW-{i}"), "name": "Vườn mới", "province": "Đắk Lắk"});
        let r = send(s, "POST", "/api/orchards", t, &[], json(orchard)).await;
        check("POST /api/orchards", r.status, expect(StatusCode::CREATED, surveyor), &r.body);
        let r =
            send(s, "PATCH", "/api/orchards/DL-A", t, &[], json(json!({"planting_area_code": "VN-DLK-0009"}))).await;
        check("PATCH /api/orchards/DL-A", r.status, expect(StatusCode::OK, surveyor), &r.body);

        // Imports.
        let csv = format!("lon,lat,cultivar,health,orchard\n108.0511,12.6811,Ri6,good,DL-A\n# {i}\n");
        let (ct, body) = multipart_csv(&format!("survey-{i}.csv"), &csv);
        let r = send(s, "POST", "/api/imports", t, &[("content-type", &ct)], body).await;
        let want = expect(r.status, surveyor);
        check("POST /api/imports", r.status, want, &r.body);
        if surveyor {
            assert!(r.status.is_success(), "import as {who:?}: {}", r.body);
        }

        // Accounts.
        let r = send(s, "GET", "/api/users", t, &[], vec![]).await;
        check("GET /api/users", r.status, expect(StatusCode::OK, admin), &r.body);
        let r =
            send(s, "POST", "/api/users", t, &[], json(json!({"name": format!("new {i}"), "role": "volunteer"}))).await;
        check("POST /api/users", r.status, expect(StatusCode::CREATED, admin), &r.body);
        let r = send(s, "DELETE", "/api/users/nobody", t, &[], vec![]).await;
        check("DELETE /api/users/{name}", r.status, expect(StatusCode::NOT_FOUND, admin), &r.body);
        let r = send(s, "GET", "/api/me", t, &[], vec![]).await;
        check("GET /api/me", r.status, expect(StatusCode::OK, true), &r.body);
    }
    assert_eq!(checked, 4 * 16);
}

#[tokio::test]
async fn bad_and_revoked_tokens_get_401_everywhere() {
    let w = world().await;
    let s = &w.state;
    for header in ["Bearer om_nonsense", "Basic YWRtaW46YWRtaW4=", "Bearer ", &format!("Bearer {}x", w.volunteer)] {
        let r = send(s, "GET", "/api/trees?limit=1", None, &[("authorization", header)], vec![]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{header}: {}", r.body);
        assert!(r.headers.contains_key("www-authenticate"));
    }
    let (unknown, _) = api::auth::new_token();
    let r = send(s, "GET", "/api/me", Some(&unknown), &[], vec![]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Revoked through the API: the very next request fails.
    let created =
        send(s, "POST", "/api/users", Some(&w.admin), &[], json(json!({"name": "Temp", "role": "volunteer"}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let temp = created.body["token"].as_str().unwrap().to_string();
    assert_eq!(send(s, "GET", "/api/me", Some(&temp), &[], vec![]).await.status, StatusCode::OK);
    let r = send(s, "DELETE", "/api/users/Temp", Some(&w.admin), &[], vec![]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["revoked_at"].is_string());
    let r = send(s, "GET", "/api/me", Some(&temp), &[], vec![]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("revoked"));

    // Tokens never appear in listings.
    let r = send(s, "GET", "/api/users", Some(&w.admin), &[], vec![]).await;
    let text = String::from_utf8(r.bytes).unwrap();
    assert!(!text.contains(&w.admin) && !text.contains("token"), "{text}");
}

#[tokio::test]
async fn owners_are_private() {
    let w = world().await;
    let s = &w.state;
    for uri in ["/api/orchards/DL-A", "/api/orchards"] {
        let public = send(s, "GET", uri, None, &[], vec![]).await;
        assert_eq!(public.status, StatusCode::OK);
        let text = String::from_utf8(public.bytes).unwrap();
        assert!(!text.contains("owner") && !text.contains("0905"), "{uri}: {text}");
        let signed_in = send(s, "GET", uri, Some(&w.farmer), &[], vec![]).await;
        assert!(String::from_utf8(signed_in.bytes).unwrap().contains("Nguyễn Văn Tám"), "{uri}");
    }
}
