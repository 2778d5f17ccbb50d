//! The OpenAPI 3.0.3 document of the service, served at `/api/openapi.json`
//! (and at `/ogc/api`, the OGC API's own address for it).
//!
//! Built by hand with `json!`: one [`Op`] per (method, path) of
//! [`crate::ROUTES`] (a test checks the two agree both ways), shared
//! parameters, responses and schemas under `components`.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::params::Params;
use crate::routes::ogc;

/// `GET /api/openapi.json`: the OpenAPI document.
pub async fn serve() -> Response {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    let bytes = BYTES.get_or_init(|| serde_json::to_vec(&document()).unwrap_or_default()).clone();
    ([(header::CONTENT_TYPE, HeaderValue::from_static(ogc::OPENAPI_MEDIA_TYPE))], bytes).into_response()
}

/// Who may call an operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Access {
    /// Anyone; no token is read.
    #[default]
    Public,
    /// Anyone; a token, when sent, is checked and shows more (orchard owners).
    Optional,
    /// A bearer token is required.
    Token,
}

/// One operation of the document.
#[derive(Debug, Default)]
struct Op {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: &'static str,
    access: Access,
    parameters: Vec<Value>,
    body: Option<Value>,
    /// Success (and other non-error) responses by status.
    responses: Vec<(&'static str, Value)>,
    /// Error statuses, each a shared response of `components/responses`.
    errors: &'static [u16],
}

/// Errors any operation may answer: a bad token is refused whatever the
/// route, rate limits and the time limit apply to every request.
const EVERYWHERE: [u16; 4] = [401, 429, 500, 503];

/// The shared error responses: status, component name, description.
const ERRORS: [(u16, &str, &str); 14] = [
    (400, "BadRequest", "A parameter or the body is missing or malformed; the message names it and its value."),
    (
        401,
        "Unauthorized",
        "No token where one is needed, or a malformed, unknown or revoked token (refused whatever the route).",
    ),
    (403, "Forbidden", "The account's role does not allow this (or not on this orchard)."),
    (404, "NotFound", "Nothing with this identifier."),
    (409, "Conflict", "Conflicts with what is stored (an id, name or tag code already taken)."),
    (410, "Gone", "The tree was removed; the message says when and why (see its history)."),
    (412, "PreconditionFailed", "`If-Match` names a version that is no longer current; nothing was written."),
    (413, "PayloadTooLarge", "The body is larger than allowed."),
    (415, "UnsupportedMediaType", "The body is not of a type this operation accepts."),
    (422, "Unprocessable", "Well-formed, but values are invalid; `problems` lists every one."),
    (428, "PreconditionRequired", "`If-Match` is missing: send the ETag of your last read."),
    (
        429,
        "TooManyRequests",
        "Too many requests from this client (without a token, or failed sign-ins); retry later (`Retry-After`, when given, says when).",
    ),
    (500, "ServerError", "Internal error (the body is opaque; the cause is logged)."),
    (503, "Unavailable", "The server is still loading its index, or the request took too long."),
];

fn sref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn pref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/parameters/{name}") })
}

fn content(media_type: &str, schema: Value) -> Value {
    let mut map = Map::new();
    map.insert(media_type.to_string(), json!({ "schema": schema }));
    Value::Object(map)
}

fn reply(description: &str, media_type: &str, schema: Value) -> Value {
    json!({ "description": description, "content": content(media_type, schema) })
}

fn binary() -> Value {
    json!({ "type": "string", "format": "binary" })
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn required_query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": true, "description": description, "schema": schema })
}

fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

fn limit(default: usize, max: usize) -> Value {
    query(
        "limit",
        "Largest number of features in the answer (a page); more are reached through the `next` link.",
        json!({ "type": "integer", "minimum": 1, "maximum": max, "default": default }),
    )
}

/// The query parameter of one name of [`Params::FILTER_NAMES`], or `None`
/// for a name this document does not know (a test refuses that).
fn filter_parameter(name: &str) -> Option<Value> {
    let list = |items: Value| json!({ "type": "array", "items": items });
    let text = json!({ "type": "string" });
    let year = json!({ "type": "integer", "minimum": 1900, "maximum": 2200 });
    let (description, schema) = match name {
        "cultivar" => (
            "Any of these cultivars, comma-separated. Names are normalised (`musang king` is `Musang King`).",
            list(text),
        ),
        "health" => (
            "Any of these health states, comma-separated.",
            list(json!({ "type": "string", "enum": ["good", "fair", "poor", "dead"] })),
        ),
        "planted_from" => ("Planted in or after this year (trees without a planting year never match).", year),
        "planted_to" => ("Planted in or before this year; not before `planted_from`.", year),
        "orchard" => ("In any of these orchards (ids, comma-separated).", list(text)),
        "planting_area_code" => {
            ("The orchard's planting-area code (mã số vùng trồng), ignoring case and Vietnamese diacritics.", text)
        }
        "commune" => ("The orchard's commune (xã), ignoring case and Vietnamese diacritics.", text),
        "district" => ("The orchard's district (huyện), ignoring case and Vietnamese diacritics.", text),
        "province" => ("The orchard's province (tỉnh), ignoring case and Vietnamese diacritics.", text),
        "updated_since" => {
            ("Changed at or after this time (RFC 3339).", json!({ "type": "string", "format": "date-time" }))
        }
        "q" => ("Text in the tag code or in the orchard's name, ignoring case and Vietnamese diacritics.", text),
        _ => return None,
    };
    let mut p = query(name, description, schema.clone());
    if schema["type"] == "array" {
        p["style"] = json!("form");
        p["explode"] = json!(false);
    }
    Some(p)
}

/// References to the filter parameters, in [`Params::FILTER_NAMES`] order.
fn filters() -> Vec<Value> {
    Params::FILTER_NAMES.iter().map(|n| pref(&format!("filter_{n}"))).collect()
}

impl Op {
    fn to_json(&self) -> Value {
        let mut op = json!({
            "operationId": self.id,
            "tags": [self.tag],
            "summary": self.summary,
        });
        if !self.description.is_empty() {
            op["description"] = json!(self.description);
        }
        op["security"] = match self.access {
            Access::Public => json!([]),
            Access::Optional => json!([{}, { "bearerAuth": [] }]),
            Access::Token => json!([{ "bearerAuth": [] }]),
        };
        if !self.parameters.is_empty() {
            op["parameters"] = json!(self.parameters);
        }
        if let Some(body) = &self.body {
            op["requestBody"] = body.clone();
        }
        let mut responses = Map::new();
        for (status, r) in &self.responses {
            responses.insert((*status).to_string(), r.clone());
        }
        let mut errors: Vec<u16> = self.errors.to_vec();
        errors.extend(EVERYWHERE);
        errors.sort_unstable();
        errors.dedup();
        for status in errors {
            if let Some((_, name, _)) = ERRORS.iter().find(|(s, _, _)| *s == status) {
                responses.insert(status.to_string(), json!({ "$ref": format!("#/components/responses/{name}") }));
            }
        }
        op["responses"] = Value::Object(responses);
        op
    }
}

fn json_body(schema: Value, description: &str) -> Value {
    json!({ "required": true, "description": description, "content": content("application/json", schema) })
}

fn etag_header() -> Value {
    json!({ "description": "The tree's version, quoted (`\"3\"`): send it back in `If-Match` to change the tree.", "schema": { "type": "string" } })
}

fn if_match() -> Value {
    json!({
        "name": "If-Match", "in": "header", "required": true,
        "description": "The tree's ETag from your last read (`\"3\"`; `W/\"3\"` and `3` are accepted). Without it: 428; stale: 412.",
        "schema": { "type": "string", "example": "\"3\"" }
    })
}

/// Every operation, in [`crate::ROUTES`] order.
fn operations() -> Vec<Op> {
    let tree_id = pref("treeKey");
    let orchard_id = pref("orchardId");
    let tree_reply = |d: &str| json!({ "description": d, "headers": { "ETag": etag_header() }, "content": content("application/geo+json", sref("TreeFeature")) });
    let mut ops = vec![
        Op {
            method: "GET",
            path: "/",
            id: "mapPage",
            tag: "map",
            summary: "The map page (MapLibre GL JS): trees by health or cultivar, clusters, search, filters, near me",
            responses: vec![("200", reply("An HTML page.", "text/html", json!({ "type": "string" })))],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/about",
            id: "home",
            tag: "service",
            summary: "About page: what this server holds, with links to live examples",
            responses: vec![("200", reply("An HTML page.", "text/html", json!({ "type": "string" })))],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/map/style.json",
            id: "mapStyle",
            tag: "map",
            summary: "The MapLibre style of the map page: tree tiles, orchards, optional raster basemap",
            responses: vec![("200", reply("A MapLibre style.", "application/json", json!({ "type": "object" })))],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/map/app.js",
            id: "mapScript",
            tag: "map",
            summary: "The map page's script",
            responses: vec![("200", reply("JavaScript.", "text/javascript", json!({ "type": "string" })))],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/map/app.css",
            id: "mapStylesheet",
            tag: "map",
            summary: "The map page's stylesheet",
            responses: vec![("200", reply("CSS.", "text/css", json!({ "type": "string" })))],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/map/vendor/maplibre-gl.js",
            id: "maplibreScript",
            tag: "map",
            summary: "MapLibre GL JS from the installed npm package (404 when not installed: the page uses a CDN)",
            responses: vec![("200", reply("JavaScript.", "text/javascript", json!({ "type": "string" })))],
            errors: &[404],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/map/vendor/maplibre-gl.css",
            id: "maplibreStylesheet",
            tag: "map",
            summary: "MapLibre GL JS's stylesheet from the installed npm package (404 when not installed)",
            responses: vec![("200", reply("CSS.", "text/css", json!({ "type": "string" })))],
            errors: &[404],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/healthz",
            id: "health",
            tag: "service",
            summary: "The process is up and its tree index is loaded",
            responses: vec![("200", reply("Up.", "application/json", sref("Health")))],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/readyz",
            id: "ready",
            tag: "service",
            summary: "Ready for writes: the database answers (503 while it does not; reads go on from memory)",
            responses: vec![(
                "200",
                reply(
                    "Ready.",
                    "application/json",
                    json!({ "type": "object", "required": ["status", "database"], "properties": {
                    "status": { "type": "string" }, "database": { "type": "string" },
                    "change_seq": { "type": "integer" }, "applied_seq": { "type": "integer" } } }),
                ),
            )],
            errors: &[503],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/metrics",
            id: "metrics",
            tag: "service",
            summary: "Metrics in the Prometheus text exposition format",
            responses: vec![("200", reply("Metrics.", "text/plain; version=0.0.4", json!({ "type": "string" })))],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/openapi.json",
            id: "openapi",
            tag: "service",
            summary: "This document (OpenAPI 3.0)",
            responses: vec![(
                "200",
                reply("The OpenAPI document.", ogc::OPENAPI_MEDIA_TYPE, json!({ "type": "object" })),
            )],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/me",
            id: "getMe",
            tag: "users",
            summary: "The signed-in account",
            access: Access::Token,
            responses: vec![("200", reply("The account.", "application/json", sref("User")))],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/users",
            id: "listUsers",
            tag: "users",
            summary: "Every account, revoked ones included (admin)",
            access: Access::Token,
            responses: vec![("200", reply("The accounts.", "application/json", sref("UserList")))],
            errors: &[403],
            ..Op::default()
        },
        Op {
            method: "POST",
            path: "/api/users",
            id: "createUser",
            tag: "users",
            summary: "Create an account (admin); its token is in this answer and nowhere else, ever",
            access: Access::Token,
            body: Some(json_body(sref("NewUser"), "The account.")),
            responses: vec![("201", reply("Created, with the token.", "application/json", sref("CreatedUser")))],
            errors: &[400, 403, 409],
            ..Op::default()
        },
        Op {
            method: "DELETE",
            path: "/api/users/{name}",
            id: "revokeUser",
            tag: "users",
            summary: "Revoke an account's token at once (admin)",
            access: Access::Token,
            parameters: vec![path_param("name", "The account's name.", json!({ "type": "string" }))],
            responses: vec![("200", reply("The revoked account.", "application/json", sref("User")))],
            errors: &[403, 404],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/trees",
            id: "searchTrees",
            tag: "trees",
            summary: "Search trees by place and attributes, paged",
            description: "Every part is optional and they combine: where (`bbox`, and/or a point `lon`,`lat` with an \
                          optional `radius_m`; without a radius, trees are taken nearest first), what (the attribute \
                          filters), order (`sort`), paging (`limit` and the `cursor` of the `next` link). \
                          `numberMatched` counts every match (absent when trees are taken nearest-first without a radius).",
            parameters: [
                vec![
                    pref("bbox"),
                    pref("lonOptional"),
                    pref("latOptional"),
                    query(
                        "radius_m",
                        "Search radius around `lon`,`lat`, in metres (needs them).",
                        json!({ "type": "number", "minimum": 0, "maximum": crate::MAX_RADIUS_M }),
                    ),
                    query(
                        "sort",
                        "`distance` (the default with a point; each feature then has `distance_m`) or `id`.",
                        json!({ "type": "string", "enum": ["id", "distance"] }),
                    ),
                    limit(crate::DEFAULT_LIMIT, crate::MAX_LIMIT),
                    pref("cursor"),
                ],
                filters(),
            ]
            .concat(),
            responses: vec![("200", reply("A page of trees.", "application/geo+json", sref("TreeCollection")))],
            errors: &[400],
            ..Op::default()
        },
        Op {
            method: "POST",
            path: "/api/trees",
            id: "createTree",
            tag: "trees",
            summary: "Add a tree (volunteer, admin)",
            access: Access::Token,
            body: Some(json_body(sref("NewTree"), "The tree; unknown members are refused.")),
            responses: vec![(
                "201",
                json!({
                    "description": "Created: the tree with its ETag and Location.",
                    "headers": { "ETag": etag_header(), "Location": { "description": "The tree's URL.", "schema": { "type": "string" } } },
                    "content": content("application/geo+json", sref("TreeFeature")),
                }),
            )],
            errors: &[400, 403, 409, 422],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/trees/nearest",
            id: "nearestTrees",
            tag: "trees",
            summary: "The k nearest trees to a point, nearest first, with distance_m",
            parameters: vec![
                pref("lon"),
                pref("lat"),
                query(
                    "k",
                    "How many trees.",
                    json!({ "type": "integer", "minimum": 1, "maximum": crate::MAX_K, "default": 1 }),
                ),
            ],
            responses: vec![("200", reply("The trees.", "application/geo+json", sref("TreeCollection")))],
            errors: &[400],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/trees/within",
            id: "treesWithin",
            tag: "trees",
            summary: "Trees within a radius of a point, nearest first, with distance_m",
            parameters: vec![
                pref("lon"),
                pref("lat"),
                required_query(
                    "radius_m",
                    "Radius in metres.",
                    json!({ "type": "number", "minimum": 0, "maximum": crate::MAX_RADIUS_M }),
                ),
                limit(crate::MAX_LIMIT, crate::MAX_LIMIT),
            ],
            responses: vec![("200", reply("The trees.", "application/geo+json", sref("TreeCollection")))],
            errors: &[400],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/trees/{id}",
            id: "getTree",
            tag: "trees",
            summary: "One tree by id or tag code, with its version as ETag",
            parameters: vec![tree_id.clone()],
            responses: vec![("200", tree_reply("The tree."))],
            errors: &[404, 410],
            ..Op::default()
        },
        Op {
            method: "PATCH",
            path: "/api/trees/{id}",
            id: "patchTree",
            tag: "trees",
            summary: "Change a tree's fields (JSON merge patch; needs If-Match)",
            description: "Volunteers and admins may change any field; farmers only the `health` of trees in their \
                          orchards. `null` clears an optional field.",
            access: Access::Token,
            parameters: vec![pref("treeId"), if_match()],
            body: Some(json!({
                "required": true,
                "description": "The fields to change.",
                "content": {
                    "application/merge-patch+json": { "schema": sref("TreePatch") },
                    "application/json": { "schema": sref("TreePatch") }
                }
            })),
            responses: vec![("200", tree_reply("The tree as now stored."))],
            errors: &[400, 403, 404, 409, 410, 412, 422, 428],
        },
        Op {
            method: "DELETE",
            path: "/api/trees/{id}",
            id: "removeTree",
            tag: "trees",
            summary: "Remove a tree with a reason (volunteer, admin; needs If-Match)",
            description: "The tree leaves the map; its history keeps it. The reason comes as the `reason` query \
                          parameter or in a JSON body.",
            access: Access::Token,
            parameters: vec![
                pref("treeId"),
                if_match(),
                query(
                    "reason",
                    "Why the tree is removed.",
                    json!({ "type": "string", "enum": ["dead", "cut", "mistaken"] }),
                ),
            ],
            body: Some(json!({
                "required": false,
                "description": "The reason, when not in the query.",
                "content": content("application/json", sref("TreeRemoval")),
            })),
            responses: vec![("200", reply("Removed.", "application/json", sref("TreeRemoved")))],
            errors: &[400, 403, 404, 410, 412, 428],
        },
        Op {
            method: "GET",
            path: "/api/trees/{id}/history",
            id: "treeHistory",
            tag: "trees",
            summary: "Every change to a tree, oldest first (removed trees included)",
            parameters: vec![tree_id.clone()],
            responses: vec![("200", reply("The history.", "application/json", sref("TreeHistory")))],
            errors: &[404],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/trees/{id}/records",
            id: "listTreeRecords",
            tag: "records",
            summary: "The tree's farm diary (care and harvest records), oldest first",
            parameters: vec![tree_id.clone(), query("kind", "Only records of this kind.", sref("RecordKind"))],
            responses: vec![("200", reply("The records.", "application/json", sref("TreeRecords")))],
            errors: &[400, 404],
            ..Op::default()
        },
        Op {
            method: "POST",
            path: "/api/trees/{id}/records",
            id: "addTreeRecord",
            tag: "records",
            summary: "Append a record to the tree's diary (an account that may tend its orchard)",
            description: "Records are append-only: a correction is a new record naming the one it corrects \
                          (`corrects`). Photos are added with `POST /api/trees/{id}/photos`.",
            access: Access::Token,
            parameters: vec![tree_id.clone()],
            body: Some(json_body(sref("NewTreeRecord"), "The record.")),
            responses: vec![("201", reply("The stored record.", "application/json", sref("TreeRecord")))],
            errors: &[400, 403, 404, 410, 422],
        },
        Op {
            method: "POST",
            path: "/api/trees/{id}/photos",
            id: "addTreePhoto",
            tag: "records",
            summary: "Add a photo of the tree (the body is the JPEG or PNG image itself)",
            description: "The type is read from the image's bytes whatever the Content-Type says. Stored \
                          content-addressed; a `photo` record points to it.",
            access: Access::Token,
            parameters: vec![
                tree_id.clone(),
                query(
                    "date",
                    "The day the photo was taken (default: today in Vietnam).",
                    json!({ "type": "string", "format": "date" }),
                ),
                query("note", "Free text.", json!({ "type": "string", "maxLength": 2000 })),
            ],
            body: Some(json!({
                "required": true,
                "description": "The image.",
                "content": {
                    "image/jpeg": { "schema": binary() },
                    "image/png": { "schema": binary() },
                    "application/octet-stream": { "schema": binary() }
                }
            })),
            responses: vec![(
                "201",
                reply("The photo record and the photo's URLs.", "application/json", sref("PhotoAdded")),
            )],
            errors: &[400, 403, 404, 410, 413, 415, 422],
        },
        Op {
            method: "GET",
            path: "/api/photos/{sha256}",
            id: "getPhoto",
            tag: "records",
            summary: "A stored photo or its 256-pixel thumbnail (cacheable forever)",
            parameters: vec![
                path_param(
                    "sha256",
                    "The photo's SHA-256, lower-case hex.",
                    json!({ "type": "string", "pattern": "^[0-9a-f]{64}$" }),
                ),
                query(
                    "size",
                    "`thumb` for the thumbnail.",
                    json!({ "type": "string", "enum": ["full", "thumb"], "default": "full" }),
                ),
            ],
            responses: vec![
                (
                    "200",
                    json!({
                        "description": "The image.",
                        "headers": { "ETag": { "description": "Content address.", "schema": { "type": "string" } } },
                        "content": { "image/jpeg": { "schema": binary() }, "image/png": { "schema": binary() } }
                    }),
                ),
                ("304", json!({ "description": "Not modified (`If-None-Match` matched)." })),
            ],
            errors: &[400, 404],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/orchards",
            id: "listOrchards",
            tag: "orchards",
            summary: "Every orchard with its tree count (no boundaries; the owner only for signed-in callers)",
            access: Access::Optional,
            responses: vec![("200", reply("The orchards.", "application/geo+json", sref("OrchardCollection")))],
            ..Op::default()
        },
        Op {
            method: "POST",
            path: "/api/orchards",
            id: "createOrchard",
            tag: "orchards",
            summary: "Add an orchard (volunteer, admin)",
            access: Access::Token,
            body: Some(json_body(sref("NewOrchard"), "The orchard.")),
            responses: vec![(
                "201",
                json!({
                    "description": "Created.",
                    "headers": { "Location": { "description": "The orchard's URL.", "schema": { "type": "string" } } },
                    "content": content("application/geo+json", sref("Orchard")),
                }),
            )],
            errors: &[400, 403, 409, 422],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/orchards/{id}",
            id: "getOrchard",
            tag: "orchards",
            summary: "One orchard with its boundary and tree count (the owner only for signed-in callers)",
            access: Access::Optional,
            parameters: vec![orchard_id.clone()],
            responses: vec![("200", reply("The orchard.", "application/geo+json", sref("Orchard")))],
            errors: &[404],
            ..Op::default()
        },
        Op {
            method: "PATCH",
            path: "/api/orchards/{id}",
            id: "patchOrchard",
            tag: "orchards",
            summary: "Change an orchard's fields (volunteer, admin); null clears planting_area_code or boundary",
            access: Access::Token,
            parameters: vec![orchard_id],
            body: Some(json_body(sref("OrchardInput"), "The fields to change (`id` cannot change).")),
            responses: vec![("200", reply("The orchard as now stored.", "application/geo+json", sref("Orchard")))],
            errors: &[400, 403, 404, 422],
            ..Op::default()
        },
        Op {
            method: "POST",
            path: "/api/imports",
            id: "importSurvey",
            tag: "imports",
            summary: "Import a survey file (volunteer, admin): the same pipeline and report as `orchardmap import`",
            description: "A multipart form: option fields first (the CLI's names), then the file in a part named \
                          `file`; its name tells the format unless `format` does. Importing the same file again adds nothing.",
            access: Access::Token,
            body: Some(json!({
                "required": true,
                "description": "The survey and the import options.",
                "content": { "multipart/form-data": { "schema": sref("ImportForm") } }
            })),
            responses: vec![
                ("201", reply("Imported: a survey was recorded.", "application/json", sref("ImportReport"))),
                (
                    "200",
                    reply(
                        "Nothing new written (dry run, or the file was imported before).",
                        "application/json",
                        sref("ImportReport"),
                    ),
                ),
            ],
            errors: &[400, 403, 413, 422],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/export",
            id: "exportTrees",
            tag: "export",
            summary: "Download trees as GeoJSON, CSV, KML or GeoPackage",
            description: "Every tree matching `bbox` and the attribute filters, streamed as one file.",
            parameters: [
                vec![
                    query(
                        "format",
                        "The file format.",
                        json!({ "type": "string", "enum": ["geojson", "csv", "kml", "gpkg"], "default": "geojson" }),
                    ),
                    pref("bbox"),
                ],
                filters(),
            ]
            .concat(),
            responses: vec![(
                "200",
                json!({
                    "description": "The file (with a Content-Disposition file name).",
                    "content": {
                        "application/geo+json": { "schema": sref("ExportCollection") },
                        "text/csv": { "schema": binary() },
                        "application/vnd.google-earth.kml+xml": { "schema": binary() },
                        "application/geopackage+sqlite3": { "schema": binary() }
                    }
                }),
            )],
            errors: &[400],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/ogc",
            id: "ogcLandingPage",
            tag: "ogc",
            summary: "OGC API – Features landing page",
            parameters: vec![pref("f")],
            responses: vec![(
                "200",
                reply(
                    "Links to the API definition, conformance and collections.",
                    "application/json",
                    sref("LandingPage"),
                ),
            )],
            errors: &[400],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/ogc/conformance",
            id: "ogcConformance",
            tag: "ogc",
            summary: "OGC API conformance classes implemented (Core, GeoJSON, OpenAPI 3.0)",
            parameters: vec![pref("f")],
            responses: vec![("200", reply("The conformance classes.", "application/json", sref("ConfClasses")))],
            errors: &[400],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/ogc/api",
            id: "ogcApiDefinition",
            tag: "ogc",
            summary: "This document, at the OGC API's address",
            responses: vec![(
                "200",
                reply("The OpenAPI document.", ogc::OPENAPI_MEDIA_TYPE, json!({ "type": "object" })),
            )],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/ogc/collections",
            id: "ogcCollections",
            tag: "ogc",
            summary: "The feature collections: trees and orchards",
            parameters: vec![pref("f")],
            responses: vec![("200", reply("The collections.", "application/json", sref("Collections")))],
            errors: &[400],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/ogc/collections/{collectionId}",
            id: "ogcCollection",
            tag: "ogc",
            summary: "One collection, with its extent computed from the data",
            parameters: vec![pref("collectionId"), pref("f")],
            responses: vec![("200", reply("The collection.", "application/json", sref("CollectionInfo")))],
            errors: &[400, 404],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/ogc/collections/{collectionId}/items",
            id: "ogcItems",
            tag: "ogc",
            summary: "Features of a collection, filtered and paged",
            description: "Trees take `bbox`, `datetime` (against `updated_at`), the attribute filters and the \
                          equality filters `planted_year` and `code`; orchards take `bbox`, `datetime` (orchards carry \
                          no time: it matches every orchard) and `name`, `commune`, `district`, `province`, \
                          `planting_area_code` (equality ignoring case and diacritics). Any other parameter is \
                          refused with 400. Pages follow the `next` link, which carries every parameter.",
            parameters: [
                vec![pref("collectionId"), pref("bbox"), pref("datetime"), pref("ogcLimit"), pref("cursor"), pref("f")],
                filters(),
                vec![
                    query(
                        "planted_year",
                        "Trees: planted in this year.",
                        json!({ "type": "integer", "minimum": 1900, "maximum": 2200 }),
                    ),
                    query("code", "Trees: this tag code.", json!({ "type": "string" })),
                    query("name", "Orchards: this name, ignoring case and diacritics.", json!({ "type": "string" })),
                ],
            ]
            .concat(),
            responses: vec![(
                "200",
                reply(
                    "A page of features: trees from `trees`, orchards from `orchards`.",
                    "application/geo+json",
                    // anyOf, not oneOf: a page without features is both.
                    json!({ "anyOf": [sref("TreeCollection"), sref("OrchardCollection")] }),
                ),
            )],
            errors: &[400, 404],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/ogc/collections/{collectionId}/items/{featureId}",
            id: "ogcFeature",
            tag: "ogc",
            summary: "One feature: a tree (by id or tag code) or an orchard (by id)",
            parameters: vec![
                pref("collectionId"),
                path_param("featureId", "The feature's id (trees: also the tag code).", json!({ "type": "string" })),
                pref("f"),
            ],
            responses: vec![(
                "200",
                reply(
                    "The feature.",
                    "application/geo+json",
                    json!({ "oneOf": [sref("TreeFeature"), sref("Orchard")] }),
                ),
            )],
            errors: &[400, 404],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/tiles/trees.json",
            id: "treeTileJson",
            tag: "tiles",
            summary: "TileJSON 3.0.0 for the tree tiles (filters given here are carried into the tile URLs)",
            parameters: tile_filters(),
            responses: vec![("200", reply("TileJSON.", "application/json", json!({ "type": "object" })))],
            errors: &[400],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/trees/{id}/qr.svg",
            id: "treeQr",
            tag: "trees",
            summary: "The QR code of a tree's tag: its signed public link (GS1 Digital Link), level Q by default, 4-module quiet zone",
            parameters: qr_parameters(pref("treeKey"), "Q", "Total width in pixels (16-4096); default: scalable."),
            responses: vec![("200", reply("The QR code.", "image/svg+xml", json!({ "type": "string" })))],
            errors: &[400, 404, 410],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/trees/{id}/qr.png",
            id: "treeQrPng",
            tag: "trees",
            summary: "The QR code of a tree's tag as PNG (signed public link, level Q by default)",
            parameters: qr_parameters(pref("treeKey"), "Q", "Pixels per module (1-40), default 8."),
            responses: vec![("200", reply("The QR code.", "image/png", binary()))],
            errors: &[400, 404, 410],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/tiles/pack",
            id: "tilePack",
            tag: "tiles",
            summary: "An offline pack: every vector tile of an area and zoom range as one PMTiles v3 archive, streamed",
            parameters: vec![
                required_query("bbox", "minLon,minLat,maxLon,maxLat of the area.", json!({ "type": "string" })),
                query(
                    "minzoom",
                    "Lowest zoom.",
                    json!({ "type": "integer", "minimum": 0, "maximum": 20, "default": 10 }),
                ),
                query(
                    "maxzoom",
                    "Highest zoom.",
                    json!({ "type": "integer", "minimum": 0, "maximum": 20, "default": 18 }),
                ),
            ],
            responses: vec![("200", reply("The archive.", "application/vnd.pmtiles", binary()))],
            errors: &[400],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/tiles/trees/{z}/{x}/{y}",
            id: "treeTile",
            tag: "tiles",
            summary: "A map tile of trees and orchard boundaries: `{y}.mvt` (Mapbox Vector Tile 2.1, clustered at low \
                      zoom), `{y}.png` or `{y}@2x.png`; ETag / If-None-Match, gzip on Accept-Encoding",
            parameters: {
                let mut p = vec![
                    path_param("z", "Zoom, 0 to 20.", json!({ "type": "integer", "minimum": 0, "maximum": 20 })),
                    path_param("x", "Column, 0 to 2^z - 1.", json!({ "type": "integer", "minimum": 0 })),
                    path_param(
                        "y",
                        "Row, 0 to 2^z - 1, with the format: `5.mvt`, `5.png`, `5@2x.png`.",
                        json!({ "type": "string", "pattern": "^[0-9]+(\\.mvt|\\.png|@2x\\.png)$" }),
                    ),
                ];
                p.extend(tile_filters());
                p
            },
            responses: vec![
                (
                    "200",
                    json!({
                        "description": "The tile: a vector tile for `.mvt` (an empty body is an empty vector tile), a PNG image for `.png` and `@2x.png`.",
                        "content": { tiles::MVT_CONTENT_TYPE: { "schema": binary() }, "image/png": { "schema": binary() } }
                    }),
                ),
                ("304", json!({ "description": "Not modified (If-None-Match matched the ETag)." })),
            ],
            errors: &[400],
            ..Op::default()
        },
    ];
    ops.extend(trace_operations());
    ops
}

/// `ec` and `size` of the QR endpoints, after the path parameter.
fn qr_parameters(key: Value, default_ec: &str, size: &str) -> Vec<Value> {
    vec![
        key,
        query(
            "ec",
            "Error correction level.",
            json!({ "type": "string", "enum": ["L", "M", "Q", "H"], "default": default_ec }),
        ),
        query("size", size, json!({ "type": "integer", "minimum": 1 })),
    ]
}

/// The traceability routes: resolver, pages, lots, tags, labels, EPCIS, scans.
fn trace_operations() -> Vec<Op> {
    let code = path_param("code", "A tree tag code (7 characters) or a lot code (L + 7).", json!({ "type": "string" }));
    let lot_code = path_param("code", "A lot code (L + 7 characters).", json!({ "type": "string" }));
    let resolver_params = |p: Vec<Value>| {
        let mut p = p;
        p.push(query("8030", "The label's signature (GS1 AI 8030), base64url.", json!({ "type": "string" })));
        p.push(query(
            "linkType",
            "A link type (gs1:pip, gs1:traceability, gs1:epcis, gs1:certificationInfo, gs1:locationInfo) to be redirected to, or linkset/all.",
            json!({ "type": "string" }),
        ));
        p.push(query(
            "lang",
            "vi, en or zh: serve the page in this language (else redirect by Accept-Language).",
            json!({ "type": "string", "enum": ["vi", "en", "zh"] }),
        ));
        p
    };
    let resolved = || {
        vec![
            (
                "200",
                json!({ "description": "The page (with `lang`), or the linkset (`Accept: application/linkset+json`, `linkType=linkset`).", "content": {
                "text/html": { "schema": { "type": "string" } },
                "application/linkset+json": { "schema": sref("Linkset") }
            } }),
            ),
            (
                "307",
                json!({ "description": "To the page in the reader's language, or to the link of the `linkType` asked for." }),
            ),
            (
                "404",
                json!({ "description": "No such tree, tag or lot, or a malformed link: a page saying so for a person, the JSON error when a linkset or link type was asked for.", "content": {
                "text/html": { "schema": { "type": "string" } },
                "application/json": { "schema": sref("Error") }
            } }),
            ),
        ]
    };
    let lot_reply = |d: &str| reply(d, "application/json", sref("LotReply"));
    vec![
        Op {
            method: "GET",
            path: "/t/{code}",
            id: "treeLink",
            tag: "trace",
            summary: "A tree's public link (short form): its page in Vietnamese, English or Chinese, or its linkset; an issued tag no tree has yet opens the registration page",
            parameters: resolver_params(vec![code.clone()]),
            responses: resolved(),
            errors: &[400],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/414/{gln}/254/{code}",
            id: "treeLinkGs1",
            tag: "trace",
            summary: "A tree's GS1 Digital Link (orchard GLN, AI 414, + tree code as extension, AI 254): redirected to its page, or its linkset",
            parameters: resolver_params(vec![
                path_param("gln", "The orchard's GLN (13 digits).", json!({ "type": "string" })),
                code.clone(),
            ]),
            responses: resolved(),
            errors: &[400],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/l/{code}",
            id: "lotLink",
            tag: "trace",
            summary: "A harvest lot's public link (short form): the buyer's page (origin, planting-area code, harvest date, lab results, pre-harvest intervals, genuineness) or its linkset",
            parameters: resolver_params(vec![lot_code.clone()]),
            responses: resolved(),
            errors: &[400],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/01/{gtin}/10/{lot}",
            id: "lotLinkGs1",
            tag: "trace",
            summary: "A harvest lot's GS1 Digital Link (GTIN, AI 01, + lot, AI 10): redirected to its page, or its linkset",
            parameters: resolver_params(vec![
                path_param("gtin", "The product's GTIN (8, 12, 13 or 14 digits).", json!({ "type": "string" })),
                path_param("lot", "The lot code.", json!({ "type": "string" })),
            ]),
            responses: resolved(),
            errors: &[400],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/.well-known/jwks.json",
            id: "jwks",
            tag: "trace",
            summary: "The Ed25519 public keys (JWKS, RFC 8037) that sign tree and lot links, with each key's status",
            responses: vec![("200", reply("The key set.", "application/jwk-set+json", json!({ "type": "object" })))],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/.well-known/gs1resolver",
            id: "resolverDescription",
            tag: "trace",
            summary: "What this GS1 Digital Link resolver serves: primary keys, qualifiers, link types, languages, signatures",
            responses: vec![("200", reply("The description.", "application/json", json!({ "type": "object" })))],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/lots",
            id: "listLots",
            tag: "trace",
            summary: "Harvest lots, newest first",
            parameters: vec![query("orchard", "Only this orchard's lots.", json!({ "type": "string" }))],
            responses: vec![(
                "200",
                reply(
                    "The lots.",
                    "application/json",
                    json!({ "type": "object", "required": ["lots"], "properties": { "lots": { "type": "array", "items": sref("LotReply") } } }),
                ),
            )],
            errors: &[400],
            ..Op::default()
        },
        Op {
            method: "POST",
            path: "/api/lots",
            id: "createLot",
            tag: "trace",
            summary: "Create a harvest lot (farmer for their orchards, volunteer, admin); an orchard without a planting-area code needs `domestic: true`",
            access: Access::Token,
            body: Some(json_body(sref("NewLot"), "The lot.")),
            responses: vec![("201", lot_reply("The lot, its signed link and label sheet."))],
            errors: &[400, 403, 422],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/lots/{code}",
            id: "getLot",
            tag: "trace",
            summary: "One harvest lot with its signed link",
            parameters: vec![lot_code.clone()],
            responses: vec![("200", lot_reply("The lot."))],
            errors: &[404],
            ..Op::default()
        },
        Op {
            method: "POST",
            path: "/api/lots/{code}/revoke",
            id: "revokeLot",
            tag: "trace",
            summary: "Revoke a lot's labels (admin): its page says so from now on",
            access: Access::Token,
            parameters: vec![lot_code.clone()],
            body: Some(json_body(
                json!({ "type": "object", "required": ["reason"], "additionalProperties": false, "properties": { "reason": { "type": "string", "minLength": 1, "maxLength": 500 } } }),
                "Why.",
            )),
            responses: vec![(
                "200",
                reply(
                    "The revoked lot.",
                    "application/json",
                    json!({ "type": "object", "required": ["lot"], "properties": { "lot": sref("Lot") } }),
                ),
            )],
            errors: &[400, 403, 404],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/lots/{code}/qr.svg",
            id: "lotQr",
            tag: "trace",
            summary: "The QR code of a lot's label: its signed public link, level M by default",
            parameters: qr_parameters(lot_code.clone(), "M", "Total width in pixels (16-4096); default: scalable."),
            responses: vec![("200", reply("The QR code.", "image/svg+xml", json!({ "type": "string" })))],
            errors: &[400, 404],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/lots/{code}/qr.png",
            id: "lotQrPng",
            tag: "trace",
            summary: "The QR code of a lot's label as PNG",
            parameters: qr_parameters(lot_code, "M", "Pixels per module (1-40), default 8."),
            responses: vec![("200", reply("The QR code.", "image/png", binary()))],
            errors: &[400, 404],
            ..Op::default()
        },
        Op {
            method: "POST",
            path: "/api/tags",
            id: "issueTags",
            tag: "trace",
            summary: "Reserve N tag codes for pre-printed tags (volunteer, admin)",
            access: Access::Token,
            body: Some(json_body(
                json!({ "type": "object", "required": ["count"], "additionalProperties": false, "properties": { "count": { "type": "integer", "minimum": 1, "maximum": 10000 } } }),
                "How many.",
            )),
            responses: vec![(
                "201",
                reply(
                    "The batch.",
                    "application/json",
                    json!({ "type": "object", "required": ["batch", "codes", "issued_at", "labels"], "properties": {
                "batch": { "type": "integer" }, "codes": { "type": "array", "items": { "type": "string" } },
                "issued_at": { "type": "string", "format": "date-time" }, "labels": { "type": "string" } } }),
                ),
            )],
            errors: &[400, 403],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/tags/{code}",
            id: "getTag",
            tag: "trace",
            summary: "An issued tag: its batch, the tree carrying it and every assignment",
            parameters: vec![code.clone()],
            responses: vec![("200", reply("The tag.", "application/json", json!({ "type": "object" })))],
            errors: &[404],
            ..Op::default()
        },
        Op {
            method: "POST",
            path: "/api/tags/{code}/register",
            id: "registerTag",
            tag: "trace",
            summary: "Put an issued tag on the tree at the phone's position (volunteer, admin); re-assigning a tag in use needs an admin and `reassign: true`",
            access: Access::Token,
            parameters: vec![code],
            body: Some(json_body(sref("TagRegistration"), "The tree.")),
            responses: vec![
                ("201", reply("The new tree and its page.", "application/json", json!({ "type": "object" }))),
                ("200", reply("The re-assigned tree.", "application/json", json!({ "type": "object" }))),
            ],
            errors: &[400, 403, 404, 409, 422],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/labels",
            id: "labels",
            tag: "trace",
            summary: "A4 label sheets (PDF or SVG): an orchard's tree tags, a batch of pre-printed tags, or a lot's fruit labels; cut marks, modules ≥ 0.5 mm for tags",
            access: Access::Token,
            parameters: vec![
                query("orchard", "Tags for this orchard's trees.", json!({ "type": "string" })),
                query("batch", "Tags of this batch of pre-printed codes.", json!({ "type": "integer" })),
                query("lot", "Fruit labels of this lot.", json!({ "type": "string" })),
                query(
                    "count",
                    "Number of lot labels (default: its boxes).",
                    json!({ "type": "integer", "minimum": 1, "maximum": 5000 }),
                ),
                query("format", "pdf or svg.", json!({ "type": "string", "enum": ["pdf", "svg"], "default": "pdf" })),
                query(
                    "ec",
                    "Error correction level (default Q for tags, M for fruit labels).",
                    json!({ "type": "string", "enum": ["L", "M", "Q", "H"] }),
                ),
            ],
            responses: vec![(
                "200",
                json!({ "description": "The sheets.", "content": { "application/pdf": { "schema": binary() }, "image/svg+xml": { "schema": { "type": "string" } } } }),
            )],
            errors: &[400, 403, 404, 413],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/scans/flagged",
            id: "flaggedScans",
            tag: "trace",
            summary: "Codes scanned far more often than their lot has boxes, or from implausibly many places (admin)",
            access: Access::Token,
            responses: vec![(
                "200",
                reply(
                    "Flagged codes.",
                    "application/json",
                    json!({ "type": "object", "required": ["flagged"], "properties": { "flagged": { "type": "array", "items": { "type": "object" } } } }),
                ),
            )],
            errors: &[403],
            ..Op::default()
        },
        Op {
            method: "POST",
            path: "/api/scans/{code}/place",
            id: "sharePlace",
            tag: "trace",
            summary: "A reader of a tree or lot page shares where they are; only a ~11 km cell and the hour are kept",
            parameters: vec![path_param("code", "The tree or lot code on the page.", json!({ "type": "string" }))],
            body: Some(json_body(
                json!({ "type": "object", "required": ["lat", "lon"], "additionalProperties": false, "properties": { "lat": { "type": "number" }, "lon": { "type": "number" } } }),
                "The position.",
            )),
            responses: vec![("204", json!({ "description": "Counted." }))],
            errors: &[400, 404],
            ..Op::default()
        },
        Op {
            method: "GET",
            path: "/api/epcis/events",
            id: "epcisEvents",
            tag: "trace",
            summary: "EPCIS 2.0 JSON-LD events of a tree, a lot or an orchard: commissioning (ObjectEvent ADD), harvest (TransformationEvent), packing (AggregationEvent)",
            parameters: vec![
                query("tree", "A tree code.", json!({ "type": "string" })),
                query("lot", "A lot code.", json!({ "type": "string" })),
                query("orchard", "An orchard id.", json!({ "type": "string" })),
            ],
            responses: vec![(
                "200",
                reply(
                    "An EPCISDocument.",
                    "application/ld+json",
                    json!({ "type": "object", "required": ["@context", "type", "schemaVersion", "epcisBody"] }),
                ),
            )],
            errors: &[400, 404, 413],
            ..Op::default()
        },
    ]
}

fn tile_filters() -> Vec<Value> {
    vec![
        query("cultivar", "Only these cultivars (comma-separated).", json!({ "type": "string" })),
        query(
            "health",
            "Only these health states (comma-separated: good, fair, poor, dead).",
            json!({ "type": "string" }),
        ),
        query("orchard", "Only trees of these orchards (comma-separated ids).", json!({ "type": "string" })),
    ]
}

fn parameters() -> Value {
    let mut p = Map::new();
    let mut put = |name: &str, v: Value| {
        p.insert(name.to_string(), v);
    };
    put(
        "bbox",
        json!({
            "name": "bbox", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "Only features inside this box: minLon,minLat,maxLon,maxLat (WGS 84, CRS84 axis order).",
            "schema": { "type": "array", "minItems": 4, "maxItems": 4, "items": { "type": "number" } }
        }),
    );
    put(
        "lon",
        required_query("lon", "Longitude (WGS 84).", json!({ "type": "number", "minimum": -180, "maximum": 180 })),
    );
    put("lat", required_query("lat", "Latitude (WGS 84).", json!({ "type": "number", "minimum": -90, "maximum": 90 })));
    put(
        "lonOptional",
        query(
            "lon",
            "Longitude of a point to search around (with `lat`).",
            json!({ "type": "number", "minimum": -180, "maximum": 180 }),
        ),
    );
    put(
        "latOptional",
        query(
            "lat",
            "Latitude of a point to search around (with `lon`).",
            json!({ "type": "number", "minimum": -90, "maximum": 90 }),
        ),
    );
    put(
        "cursor",
        query(
            "cursor",
            "Where a page starts: copy it from the `next` link, never build it.",
            json!({ "type": "string" }),
        ),
    );
    put(
        "treeKey",
        path_param(
            "id",
            "The tree's numeric id, or its tag code (7 characters, a hyphen allowed after the third).",
            json!({ "type": "string" }),
        ),
    );
    put("treeId", path_param("id", "The tree's numeric id.", json!({ "type": "integer", "format": "int64" })));
    put(
        "orchardId",
        path_param("id", "The orchard's id.", json!({ "type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$" })),
    );
    put(
        "collectionId",
        path_param("collectionId", "The collection.", json!({ "type": "string", "enum": ogc::COLLECTIONS })),
    );
    put(
        "datetime",
        query(
            "datetime",
            "Only features whose time meets this instant or interval (RFC 3339 date-time or date; intervals \
             `start/end`, `../end`, `start/..`).",
            json!({ "type": "string" }),
        ),
    );
    put("ogcLimit", limit(ogc::DEFAULT_ITEMS_LIMIT, ogc::MAX_ITEMS_LIMIT));
    put(
        "f",
        query(
            "f",
            "The encoding: JSON only (HTML is not served).",
            json!({ "type": "string", "enum": ["json", "geojson"] }),
        ),
    );
    for name in Params::FILTER_NAMES {
        if let Some(v) = filter_parameter(name) {
            put(&format!("filter_{name}"), v);
        }
    }
    Value::Object(p)
}

fn responses() -> Value {
    let mut r = Map::new();
    for (status, name, description) in ERRORS {
        let mut v = reply(description, "application/json", sref("Error"));
        if status == 401 {
            v["headers"] = json!({ "WWW-Authenticate": { "description": "`Bearer realm=\"orchardmap\"`.", "schema": { "type": "string" } } });
        }
        if status == 429 {
            v["headers"] =
                json!({ "Retry-After": { "description": "Seconds to wait.", "schema": { "type": "integer" } } });
        }
        r.insert(name.to_string(), v);
    }
    Value::Object(r)
}

fn nullable(mut schema: Value) -> Value {
    schema["nullable"] = json!(true);
    schema
}

/// One kind of farm-diary record: its `kind` value and fields.
fn record_kind(kind: &str, description: &str, required: &[&str], properties: Value) -> Value {
    let mut props = json!({ "kind": { "type": "string", "enum": [kind] } });
    if let (Some(all), Some(more)) = (props.as_object_mut(), properties.as_object()) {
        all.extend(more.clone());
    }
    let mut req = vec!["kind"];
    req.extend(required);
    json!({ "type": "object", "description": description, "required": req, "properties": props })
}

fn merge(all: &mut Map<String, Value>, more: Value) {
    if let Value::Object(more) = more {
        all.extend(more);
    }
}

fn schemas() -> Value {
    let string = json!({ "type": "string" });
    let number = json!({ "type": "number" });
    let time = json!({ "type": "string", "format": "date-time" });
    let health = json!({ "type": "string", "enum": ["good", "fair", "poor", "dead"] });
    let tree_fields = json!({
        "lon": { "type": "number", "minimum": -180, "maximum": 180, "description": "Longitude (WGS 84)." },
        "lat": { "type": "number", "minimum": -90, "maximum": 90, "description": "Latitude (WGS 84)." },
        "cultivar": { "type": "string", "description": "Cultivar (normalised: `ri 6` is `Ri6`)." },
        "health": health,
        "orchard": { "type": "string", "description": "The orchard's id; the orchard must exist." },
        "code": { "type": "string", "description": "A pre-printed tag code to claim (7 characters with a check character); assigned when absent." },
        "accuracy_m": { "type": "number", "nullable": true, "minimum": 0, "description": "Horizontal GPS accuracy in metres." },
        "planted_year": { "type": "integer", "nullable": true, "description": "Year planted (not in the future)." },
        "height_m": { "type": "number", "nullable": true, "description": "Height in metres." },
        "girth_cm": { "type": "number", "nullable": true, "description": "Trunk girth at breast height, in centimetres." }
    });
    let record_kinds = [
        ("observation", "ObservationRecord"),
        ("fertiliser", "FertiliserRecord"),
        ("spray", "SprayRecord"),
        ("flowering", "FloweringRecord"),
        ("fruit_set", "FruitSetRecord"),
        ("harvest", "HarvestRecord"),
        ("photo", "PhotoRecord"),
    ];
    let mapping: Map<String, Value> =
        record_kinds.iter().map(|(k, s)| ((*k).to_string(), json!(format!("#/components/schemas/{s}")))).collect();
    let orchard_fields = json!({
        "id": { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$", "description": "Identifier, e.g. DL-CK-EATIEU-101." },
        "name": { "type": "string" },
        "owner": { "type": "string", "description": "Private: shown only to signed-in users." },
        "commune": { "type": "string" },
        "district": { "type": "string" },
        "province": { "type": "string" },
        "planting_area_code": { "type": "string", "nullable": true, "description": "Planting-area code (mã số vùng trồng), e.g. VN-DLOR-0123." },
        "gln": { "type": "string", "nullable": true, "description": "The orchard's GS1 GLN (13 digits, valid check digit): its trees' links become /414/{gln}/254/{code}." },
    });
    let mut orchard_input = orchard_fields.clone();
    orchard_input["boundary"] =
        json!({ "allOf": [sref("Polygon")], "nullable": true, "description": "Closed rings, not self-intersecting." });
    let mut orchard_properties = orchard_fields;
    orchard_properties["tree_count"] = json!({ "type": "integer", "description": "Trees in the orchard." });
    let link = sref("Link");
    let import_options: Map<String, Value> = importer::pipeline::OPTION_NAMES
        .iter()
        .map(|n| {
            (
                (*n).to_string(),
                json!({ "type": "string", "description": "Import option, as the CLI's flag of this name." }),
            )
        })
        .collect();
    let mut import_form = json!({
        "type": "object",
        "required": ["file"],
        "properties": { "file": { "type": "string", "format": "binary", "description": "The survey: CSV, KoboToolbox or ODK export, GeoJSON, GeoJSON lines, GPX or KML." } }
    });
    if let Some(props) = import_form["properties"].as_object_mut() {
        props.extend(import_options);
    }

    let mut all = Map::new();
    merge(
        &mut all,
        json!({
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": { "type": "string", "description": "Machine-readable: bad_parameter, not_found, unauthorized, forbidden, conflict, precondition_required, precondition_failed, gone, too_large, unsupported_media_type, invalid, bad_file, unavailable, internal." },
                            "message": { "type": "string", "description": "What is wrong, naming the parameter or field and its value." },
                            "problems": { "type": "array", "items": sref("Problem"), "description": "With 422: every problem, field by field." }
                        }
                    }
                }
            },
            "Problem": {
                "type": "object",
                "required": ["field", "value", "reason"],
                "properties": { "field": string, "value": string, "reason": string }
            },
            "Link": {
                "type": "object",
                "required": ["href", "rel"],
                "properties": { "href": string, "rel": string, "type": string, "title": string }
            },
            "Health": {
                "type": "object",
                "properties": {
                    "status": { "type": "string", "enum": ["ok"] },
                    "trees": { "type": "integer", "description": "Trees held in memory." },
                    "change_seq": { "type": "integer", "description": "The last change-log entry applied." }
                }
            },
            "PointGeometry": {
                "type": "object",
                "required": ["type", "coordinates"],
                "properties": {
                    "type": { "type": "string", "enum": ["Point"] },
                    "coordinates": { "type": "array", "minItems": 2, "maxItems": 2, "items": number }
                }
            },
            "Polygon": {
                "type": "object",
                "description": "A GeoJSON Polygon: an exterior ring, then holes; each ring closed, at least 4 positions.",
                "required": ["type", "coordinates"],
                "properties": {
                    "type": { "type": "string", "enum": ["Polygon"] },
                    "coordinates": {
                        "type": "array",
                        "minItems": 1,
                        "items": { "type": "array", "minItems": 4, "items": { "type": "array", "minItems": 2, "maxItems": 2, "items": number } }
                    }
                }
            }
        }),
    );
    merge(
        &mut all,
        json!({
            "TreeProperties": {
                "type": "object",
                "required": ["id", "code", "cultivar", "health", "orchard", "created_at", "updated_at", "version"],
                "properties": {
                    "id": { "type": "integer", "format": "int64" },
                    "code": { "type": "string", "description": "Tag code printed under the tree's QR code." },
                    "accuracy_m": nullable(number.clone()),
                    "cultivar": string,
                    "planted_year": nullable(json!({ "type": "integer" })),
                    "health": health,
                    "height_m": nullable(number.clone()),
                    "girth_cm": nullable(number.clone()),
                    "orchard": { "type": "string", "description": "The orchard's id." },
                    "survey_id": nullable(json!({ "type": "integer", "format": "int64" })),
                    "created_at": time,
                    "updated_at": time,
                    "version": { "type": "integer", "format": "int64", "description": "Increases by one on every change; the ETag." },
                    "distance_m": { "type": "number", "description": "Distance from the query point (distance queries only)." }
                }
            },
            "TreeFeature": {
                "type": "object",
                "description": "A tree as a GeoJSON Feature.",
                "required": ["type", "id", "geometry", "properties"],
                "properties": {
                    "type": { "type": "string", "enum": ["Feature"] },
                    "id": { "type": "integer", "format": "int64" },
                    "geometry": sref("PointGeometry"),
                    "properties": sref("TreeProperties"),
                    "links": { "type": "array", "items": link }
                }
            },
            "ExportCollection": {
                "type": "object",
                "description": "GET /api/export?format=geojson: every selected tree, with its orchard's fields (no paging).",
                "required": ["type", "features"],
                "properties": {
                    "type": { "type": "string", "enum": ["FeatureCollection"] },
                    "features": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["type", "id", "geometry", "properties"],
                            "properties": {
                                "type": { "type": "string", "enum": ["Feature"] },
                                "id": { "type": "integer", "format": "int64" },
                                "geometry": sref("PointGeometry"),
                                "properties": {
                                    "allOf": [
                                        sref("TreeProperties"),
                                        {
                                            "type": "object",
                                            "description": "The orchard's fields (null when the orchard is unknown); never its owner.",
                                            "required": ["orchard_name", "planting_area_code", "commune", "district", "province"],
                                            "properties": {
                                                "orchard_name": nullable(string.clone()),
                                                "planting_area_code": nullable(string.clone()),
                                                "commune": nullable(string.clone()),
                                                "district": nullable(string.clone()),
                                                "province": nullable(string.clone())
                                            }
                                        }
                                    ]
                                }
                            }
                        }
                    }
                }
            },
            "TreeCollection": {
                "type": "object",
                "description": "A GeoJSON FeatureCollection of trees with OGC paging members.",
                "required": ["type", "features", "numberReturned"],
                "properties": {
                    "type": { "type": "string", "enum": ["FeatureCollection"] },
                    "features": { "type": "array", "items": sref("TreeFeature") },
                    "numberMatched": { "type": "integer", "minimum": 0, "description": "Matches across every page." },
                    "numberReturned": { "type": "integer", "minimum": 0 },
                    "timeStamp": { "type": "string", "format": "date-time", "description": "OGC items only: when the answer was made." },
                    "links": { "type": "array", "items": link, "description": "`next` while more pages follow (OGC items: also `self`, `collection`)." }
                }
            }
        }),
    );
    merge(
        &mut all,
        json!({
            "NewTree": {
                "type": "object",
                "description": "Body of POST /api/trees.",
                "required": ["lon", "lat", "cultivar", "health", "orchard"],
                "additionalProperties": false,
                "properties": tree_fields.clone()
            },
            "TreePatch": {
                "type": "object",
                "description": "Body of PATCH /api/trees/{id}: the fields to change (merge patch; `null` clears an optional field). `id` and `version` may be sent back as read and are ignored: the version comes from If-Match.",
                "additionalProperties": false,
                "properties": {
                    "lon": tree_fields["lon"], "lat": tree_fields["lat"], "cultivar": tree_fields["cultivar"],
                    "health": tree_fields["health"], "orchard": tree_fields["orchard"], "code": tree_fields["code"],
                    "accuracy_m": tree_fields["accuracy_m"], "planted_year": tree_fields["planted_year"],
                    "height_m": tree_fields["height_m"], "girth_cm": tree_fields["girth_cm"],
                    "id": { "type": "integer", "format": "int64" }, "version": { "type": "integer", "format": "int64" }
                }
            },
            "RemovalReason": { "type": "string", "enum": ["dead", "cut", "mistaken"] },
            "TreeRemoval": {
                "type": "object",
                "required": ["reason"],
                "properties": { "reason": sref("RemovalReason") }
            },
            "TreeRemoved": {
                "type": "object",
                "properties": {
                    "id": { "type": "integer", "format": "int64" },
                    "code": string,
                    "removed": { "type": "boolean", "enum": [true] },
                    "reason": sref("RemovalReason")
                }
            }
        }),
    );
    merge(
        &mut all,
        json!({
            "FieldChange": {
                "type": "object",
                "required": ["field", "from", "to"],
                "properties": {
                    "field": { "type": "string", "description": "Field name as in the tree's JSON." },
                    "from": { "description": "Value before (null when absent).", "nullable": true },
                    "to": { "description": "Value after (null when absent).", "nullable": true }
                }
            },
            "TreeChange": {
                "type": "object",
                "description": "One entry of a tree's history.",
                "required": ["version", "action", "at", "by", "fields"],
                "properties": {
                    "version": { "type": "integer", "format": "int64", "description": "The version the change produced (for a removal: the last version)." },
                    "action": { "type": "string", "enum": ["create", "update", "remove"] },
                    "at": time,
                    "by": { "type": "string", "description": "An account name, or the survey import that made it." },
                    "user_id": { "type": "integer", "format": "int64", "description": "The account, when a person made it through the API." },
                    "survey_id": { "type": "integer", "format": "int64", "description": "The survey whose import made it." },
                    "fields": { "type": "array", "items": sref("FieldChange"), "description": "Fields altered (for create: every field from null)." },
                    "reason": sref("RemovalReason")
                }
            },
            "TreeHistory": {
                "type": "object",
                "properties": {
                    "tree_id": { "type": "integer", "format": "int64" },
                    "changes": { "type": "array", "items": sref("TreeChange") }
                }
            }
        }),
    );
    merge(
        &mut all,
        json!({
            "RecordKind": { "type": "string", "enum": geo_core::RECORD_KINDS },
            "ObservationRecord": record_kind("observation", "Something seen on the tree; may report a health.", &[], json!({ "health": health })),
            "FertiliserRecord": record_kind("fertiliser", "Fertiliser applied.", &["product"], json!({
                "product": { "type": "string", "maxLength": 200, "description": "Product name, e.g. NPK 16-16-8." },
                "amount_kg": { "type": "number", "exclusiveMinimum": true, "minimum": 0, "maximum": 100, "description": "Per tree, in kilograms." }
            })),
            "SprayRecord": record_kind("spray", "Plant-protection product sprayed.", &["product", "dose", "phi_days"], json!({
                "product": { "type": "string", "maxLength": 200 },
                "dose": { "type": "string", "maxLength": 200, "description": "As on the label or mixed, e.g. 20 ml / 16 l." },
                "phi_days": { "type": "integer", "minimum": 0, "maximum": 365, "description": "Pre-harvest interval: no harvest before date + phi_days." },
                "target": { "type": "string", "maxLength": 200, "description": "Pest or disease targeted." }
            })),
            "FloweringRecord": record_kind("flowering", "Flowering observed.", &[], json!({
                "percent": { "type": "number", "minimum": 0, "maximum": 100, "description": "Share of branches in flower." }
            })),
            "FruitSetRecord": record_kind("fruit_set", "Fruit set counted.", &["fruit_count"], json!({
                "fruit_count": { "type": "integer", "minimum": 0, "maximum": 10000 }
            })),
            "HarvestRecord": record_kind("harvest", "Fruit harvested from this tree.", &["fruit_count", "weight_kg"], json!({
                "fruit_count": { "type": "integer", "minimum": 1, "maximum": 2000 },
                "weight_kg": { "type": "number", "exclusiveMinimum": true, "minimum": 0, "maximum": 10000 }
            })),
            "PhotoRecord": record_kind("photo", "A photo of the tree (added with POST /api/trees/{id}/photos only).", &["sha256", "content_type"], json!({
                "sha256": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
                "content_type": { "type": "string", "enum": ["image/jpeg", "image/png"] }
            })),
            "RecordDetails": {
                "description": "What a record says, by kind.",
                "oneOf": record_kinds.iter().map(|(_, s)| sref(s)).collect::<Vec<_>>(),
                "discriminator": { "propertyName": "kind", "mapping": mapping }
            }
        }),
    );
    merge(
        &mut all,
        json!({
            "NewTreeRecord": {
                "description": "A farm-diary record as submitted: date, kind and the kind's fields.",
                "allOf": [
                    {
                        "type": "object",
                        "required": ["date"],
                        "properties": {
                            "date": { "type": "string", "format": "date", "description": "The day it happened (at most one day ahead, not before 1950)." },
                            "note": { "type": "string", "maxLength": 2000 },
                            "corrects": { "type": "integer", "format": "int64", "description": "The record of the same tree this one corrects." }
                        }
                    },
                    sref("RecordDetails")
                ]
            },
            "TreeRecord": {
                "description": "A stored farm-diary record.",
                "allOf": [
                    {
                        "type": "object",
                        "required": ["id", "tree_id", "date", "author", "created_at"],
                        "properties": {
                            "id": { "type": "integer", "format": "int64" },
                            "tree_id": { "type": "integer", "format": "int64" },
                            "date": { "type": "string", "format": "date" },
                            "note": string,
                            "corrects": { "type": "integer", "format": "int64" },
                            "author": { "type": "string", "description": "Who wrote it (account name)." },
                            "author_id": { "type": "integer", "format": "int64" },
                            "created_at": time
                        }
                    },
                    sref("RecordDetails")
                ]
            },
            "TreeRecords": {
                "type": "object",
                "properties": {
                    "tree_id": { "type": "integer", "format": "int64" },
                    "records": { "type": "array", "items": sref("TreeRecord") }
                }
            },
            "PhotoAdded": {
                "type": "object",
                "properties": {
                    "record": sref("TreeRecord"),
                    "photo": {
                        "type": "object",
                        "properties": {
                            "sha256": string, "width": { "type": "integer" }, "height": { "type": "integer" },
                            "bytes": { "type": "integer" }, "url": string, "thumbnail_url": string
                        }
                    }
                }
            }
        }),
    );
    merge(
        &mut all,
        json!({
            "OrchardProperties": {
                "type": "object",
                "required": ["id", "name", "province", "tree_count"],
                "properties": orchard_properties
            },
            "Orchard": {
                "type": "object",
                "description": "An orchard as a GeoJSON Feature (geometry null when no boundary was surveyed). `owner` only for signed-in callers of /api/orchards; never in the OGC API.",
                "required": ["type", "id", "geometry", "properties"],
                "properties": {
                    "type": { "type": "string", "enum": ["Feature"] },
                    "id": string,
                    "geometry": { "allOf": [sref("Polygon")], "nullable": true },
                    "properties": sref("OrchardProperties"),
                    "links": { "type": "array", "items": link }
                }
            },
            "OrchardCollection": {
                "type": "object",
                "required": ["type", "features", "numberReturned"],
                "properties": {
                    "type": { "type": "string", "enum": ["FeatureCollection"] },
                    "features": { "type": "array", "items": sref("Orchard") },
                    "numberMatched": { "type": "integer", "minimum": 0 },
                    "numberReturned": { "type": "integer", "minimum": 0 },
                    "timeStamp": time,
                    "links": { "type": "array", "items": link }
                }
            },
            "OrchardInput": {
                "type": "object",
                "description": "An orchard's fields (PATCH: any of them).",
                "additionalProperties": false,
                "properties": orchard_input
            },
            "NewOrchard": {
                "description": "Body of POST /api/orchards: id, name and province are required.",
                "allOf": [sref("OrchardInput"), { "type": "object", "required": ["id", "name", "province"] }]
            }
        }),
    );
    merge(
        &mut all,
        json!({
            "Role": { "type": "string", "enum": ["admin", "volunteer", "farmer"] },
            "User": {
                "type": "object",
                "description": "An account (never its token).",
                "required": ["id", "name", "role", "orchards", "created_at"],
                "properties": {
                    "id": { "type": "integer", "format": "int64" },
                    "name": string,
                    "role": sref("Role"),
                    "orchards": { "type": "array", "items": string, "description": "Orchards assigned (farmers)." },
                    "created_at": time,
                    "revoked_at": nullable(time.clone())
                }
            },
            "UserList": {
                "type": "object",
                "properties": { "users": { "type": "array", "items": sref("User") } }
            },
            "NewUser": {
                "type": "object",
                "required": ["name", "role"],
                "additionalProperties": false,
                "properties": {
                    "name": { "type": "string", "description": "Unique among accounts." },
                    "role": sref("Role"),
                    "orchards": { "type": "array", "items": string, "description": "Orchard ids; a farmer needs at least one." }
                }
            },
            "CreatedUser": {
                "type": "object",
                "required": ["user", "token"],
                "properties": {
                    "user": sref("User"),
                    "token": { "type": "string", "pattern": "^om_[A-Za-z0-9_-]{43}$", "description": "The API token: shown this once, never again." }
                }
            }
        }),
    );
    merge(
        &mut all,
        json!({
            "ImportForm": import_form,
            "ImportReport": {
                "type": "object",
                "description": "What the import did, row by row counted: the same report as `orchardmap import --report`.",
                "additionalProperties": true,
                "properties": {
                    "file": string, "format": string, "sha256": string,
                    "mapping": { "type": "array", "items": string },
                    "dry_run": { "type": "boolean" },
                    "survey_id": nullable(json!({ "type": "integer", "format": "int64" })),
                    "already_imported": nullable(json!({ "type": "object" })),
                    "read": { "type": "integer" }, "inserted": { "type": "integer" }, "updated": { "type": "integer" },
                    "duplicates": { "type": "integer" }, "rejected": { "type": "integer" }, "warnings": { "type": "integer" },
                    "rejected_by_reason": { "type": "object", "additionalProperties": { "type": "integer" } },
                    "warnings_by_reason": { "type": "object", "additionalProperties": { "type": "integer" } },
                    "duplicates_by_reason": { "type": "object", "additionalProperties": { "type": "integer" } },
                    "problems": { "type": "array", "items": { "type": "object" } },
                    "problems_truncated": { "type": "boolean" },
                    "preview": { "type": "array", "items": { "type": "object" } },
                    "reject_file": nullable(string.clone()),
                    "elapsed_ms": { "type": "integer" }
                }
            }
        }),
    );
    merge(
        &mut all,
        json!({
            "LandingPage": {
                "type": "object",
                "required": ["links"],
                "properties": { "title": string, "description": string, "links": { "type": "array", "items": link } }
            },
            "ConfClasses": {
                "type": "object",
                "required": ["conformsTo"],
                "properties": { "conformsTo": { "type": "array", "items": string } }
            },
            "Extent": {
                "type": "object",
                "properties": {
                    "spatial": {
                        "type": "object",
                        "properties": {
                            "bbox": { "type": "array", "minItems": 1, "items": { "type": "array", "minItems": 4, "maxItems": 4, "items": number } },
                            "crs": { "type": "string", "enum": [ogc::CRS84] }
                        }
                    },
                    "temporal": {
                        "type": "object",
                        "properties": {
                            "interval": {
                                "type": "array",
                                "minItems": 1,
                                "items": { "type": "array", "minItems": 2, "maxItems": 2, "items": { "type": "string", "format": "date-time", "nullable": true } }
                            },
                            "trs": string
                        }
                    }
                }
            },
            "CollectionInfo": {
                "type": "object",
                "required": ["id", "links"],
                "properties": {
                    "id": { "type": "string", "enum": ogc::COLLECTIONS },
                    "title": string,
                    "description": string,
                    "links": { "type": "array", "items": link },
                    "extent": sref("Extent"),
                    "itemType": { "type": "string", "enum": ["feature"] },
                    "crs": { "type": "array", "items": string }
                }
            },
            "Collections": {
                "type": "object",
                "required": ["links", "collections"],
                "properties": {
                    "links": { "type": "array", "items": link },
                    "collections": { "type": "array", "items": sref("CollectionInfo") }
                }
            }
        }),
    );
    merge(&mut all, trace_schemas());
    Value::Object(all)
}

/// Schemas of the traceability routes.
fn trace_schemas() -> Value {
    let date = json!({ "type": "string", "format": "date" });
    let lab = json!({
        "type": "object",
        "required": ["analyte", "laboratory", "tested_on"],
        "additionalProperties": false,
        "properties": {
            "analyte": { "type": "string", "enum": ["cadmium", "auramine_o"] },
            "value_mg_per_kg": { "type": "number", "nullable": true, "minimum": 0, "description": "Level found; null: not detected." },
            "laboratory": { "type": "string", "minLength": 1, "maxLength": 200 },
            "tested_on": date,
            "report_no": { "type": "string", "maxLength": 100 }
        }
    });
    let trees = json!({
        "description": "`\"whole_orchard\"`, or `{\"trees\": [id, ...]}` (trees of the lot's orchard).",
        "oneOf": [
            { "type": "string", "enum": ["whole_orchard"] },
            { "type": "object", "required": ["trees"], "properties": { "trees": { "type": "array", "items": { "type": "integer" }, "minItems": 1 } } }
        ]
    });
    json!({
        "NewLot": {
            "type": "object",
            "required": ["orchard_id", "trees", "harvest_date", "weight_kg"],
            "additionalProperties": false,
            "properties": {
                "orchard_id": { "type": "string" },
                "trees": trees,
                "harvest_date": date,
                "weight_kg": { "type": "number", "exclusiveMinimum": true, "minimum": 0, "maximum": 1000000 },
                "boxes": { "type": "integer", "nullable": true, "minimum": 1, "maximum": 1000000 },
                "packing_house": { "type": "string", "nullable": true, "maxLength": 40 },
                "lab_results": { "type": "array", "items": lab },
                "domestic": { "type": "boolean", "default": false, "description": "For the domestic market: needed when the orchard has no planting-area code." },
                "gtin": { "type": "string", "nullable": true, "description": "GTIN-8/12/13/14 with a valid check digit." }
            }
        },
        "Lot": {
            "type": "object",
            "required": ["id", "code", "orchard_id", "tree_ids", "whole_orchard", "harvest_date", "weight_kg", "lab_results", "domestic", "created_by", "created_at"],
            "properties": {
                "id": { "type": "integer" },
                "code": { "type": "string" },
                "orchard_id": { "type": "string" },
                "tree_ids": { "type": "array", "items": { "type": "integer" } },
                "whole_orchard": { "type": "boolean" },
                "harvest_date": date,
                "weight_kg": { "type": "number" },
                "boxes": { "type": "integer", "nullable": true },
                "packing_house": { "type": "string", "nullable": true },
                "lab_results": { "type": "array", "items": lab },
                "domestic": { "type": "boolean" },
                "gtin": { "type": "string", "nullable": true },
                "created_by": { "type": "string" },
                "created_by_id": { "type": "integer", "nullable": true },
                "created_at": { "type": "string", "format": "date-time" },
                "revoked_at": { "type": "string", "format": "date-time", "nullable": true },
                "revoked_reason": { "type": "string", "nullable": true }
            }
        },
        "LotReply": {
            "type": "object",
            "required": ["lot", "url", "page", "labels"],
            "properties": {
                "lot": sref("Lot"),
                "url": { "type": "string", "description": "The signed public link printed on its labels." },
                "page": { "type": "string" },
                "labels": { "type": "string", "description": "The label sheet (PDF)." }
            }
        },
        "TagRegistration": {
            "type": "object",
            "required": ["lon", "lat", "cultivar", "health"],
            "additionalProperties": false,
            "properties": {
                "lon": { "type": "number" },
                "lat": { "type": "number" },
                "accuracy_m": { "type": "number", "nullable": true },
                "cultivar": { "type": "string" },
                "planted_year": { "type": "integer", "nullable": true },
                "health": { "type": "string", "enum": ["good", "fair", "poor", "dead"] },
                "height_m": { "type": "number", "nullable": true },
                "orchard": { "type": "string", "nullable": true, "description": "Default: the orchard whose boundary holds the position." },
                "reassign": { "type": "boolean", "default": false, "description": "Admin only: move a tag in use to this tree." },
                "note": { "type": "string", "nullable": true }
            }
        },
        "Linkset": {
            "type": "object",
            "required": ["linkset"],
            "description": "RFC 9264 linkset: relation types (GS1 Web Vocabulary URIs) to link targets.",
            "properties": { "linkset": { "type": "array", "items": { "type": "object", "required": ["anchor"] } } }
        }
    })
}

/// The OpenAPI 3.0.3 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in operations() {
        let entry = paths.entry(op.path.to_string()).or_insert_with(|| json!({}));
        entry[op.method.to_ascii_lowercase()] = op.to_json();
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "orchardmap",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Durian trees surveyed one by one: records, spatial queries, orchards, farm diaries, \
                            survey imports and exports, and an OGC API – Features (Part 1) under /ogc. Reads of \
                            public data need no token; writes need `Authorization: Bearer om_...`. Every error \
                            answers `{\"error\":{\"code\",\"message\"}}`.",
            "license": { "name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0" }
        },
        "servers": [{ "url": "/", "description": "This server" }],
        "tags": [
            { "name": "trees", "description": "Tree records and spatial queries." },
            { "name": "records", "description": "Farm diary: care and harvest records, photos." },
            { "name": "orchards", "description": "Orchards and their boundaries." },
            { "name": "users", "description": "Accounts and tokens." },
            { "name": "imports", "description": "Survey imports." },
            { "name": "export", "description": "Downloads." },
            { "name": "ogc", "description": "OGC API – Features, Part 1 (Core, GeoJSON, OpenAPI 3.0)." },
            { "name": "map", "description": "The map page, its MapLibre style and scripts." },
            { "name": "trace", "description": "Traceability: GS1 Digital Link resolver, tree and lot pages, harvest lots, tags, labels, EPCIS, signatures." },
            { "name": "service", "description": "Health, metrics, this document." }
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (`om_` and 43 characters), created by an admin (POST /api/users or `orchardmap users add`)."
                }
            },
            "parameters": parameters(),
            "responses": responses(),
            "schemas": schemas()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r),
                        ("discriminator", d) => out.extend(
                            d["mapping"].as_object().into_iter().flat_map(|m| m.values().filter_map(Value::as_str)),
                        ),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_route_and_nothing_else() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        for (method, path) in crate::ROUTES {
            let op = &paths.get(*path).unwrap_or_else(|| panic!("{path} is not in the document"))
                [method.to_ascii_lowercase()];
            assert!(op.is_object(), "{method} {path} is not in the document");
        }
        let routes: HashSet<(String, String)> =
            crate::ROUTES.iter().map(|(m, p)| (m.to_ascii_lowercase(), p.to_string())).collect();
        for (path, item) in paths {
            for (method, _) in item.as_object().unwrap() {
                assert!(METHODS.contains(&method.as_str()), "{path}: {method}");
                assert!(routes.contains(&(method.clone(), path.clone())), "{method} {path} is not in ROUTES");
            }
        }
    }

    #[test]
    fn operation_ids_are_unique_and_refs_resolve() {
        let doc = document();
        let mut ids = HashSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
                assert!(ids.insert(id.to_string()), "operationId {id} twice");
                assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}");
                // Path templates and path parameters agree.
                for param in op["parameters"].as_array().into_iter().flatten() {
                    let param = match param["$ref"].as_str() {
                        Some(r) => doc.pointer(&r[1..]).unwrap(),
                        None => param,
                    };
                    if param["in"] == "path" {
                        let name = param["name"].as_str().unwrap();
                        assert!(path.contains(&format!("{{{name}}}")), "{method} {path}: path parameter {name}");
                    }
                }
            }
        }
        let mut found = vec![];
        refs(&doc, &mut found);
        assert!(found.len() > 50);
        for r in found {
            assert!(r.starts_with("#/"), "{r}");
            assert!(doc.pointer(&r[1..]).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn filters_are_documented_where_they_are_read() {
        for name in Params::FILTER_NAMES {
            assert!(filter_parameter(name).is_some(), "filter {name} has no description");
        }
        let doc = document();
        for (path, method) in
            [("/api/trees", "get"), ("/api/export", "get"), ("/ogc/collections/{collectionId}/items", "get")]
        {
            let params = doc["paths"][path][method]["parameters"].as_array().unwrap();
            for name in Params::FILTER_NAMES {
                let r = format!("#/components/parameters/filter_{name}");
                assert!(params.iter().any(|p| p["$ref"] == r.as_str()), "{path} lacks {name}");
            }
        }
        // Writes need the token, public reads do not.
        assert_eq!(doc["paths"]["/api/trees"]["post"]["security"], json!([{ "bearerAuth": [] }]));
        assert_eq!(doc["paths"]["/api/trees"]["get"]["security"], json!([]));
    }
}
