#!/usr/bin/env python3
"""Resources for scripts/schemathesis.sh to aim at, and the schemathesis config that aims there.

    schemathesis-data.py BASE TOKEN ORCHARD OUT.toml

With TOKEN (an admin's) it makes, on the server at BASE, what the bundled sample lacks: a harvest lot
of ORCHARD (with a GTIN), two pre-printed tags and a photo of a tree of ORCHARD. It then writes a
schemathesis config whose dictionaries hold these and a few of ORCHARD's trees (ids and tag codes):
the path parameters that name a tree, an orchard, a lot, a tag or a photo, and `If-Match`, take one of
them in half the generated cases and a generated value in the other half. Without it nearly every
request to `/api/trees/{id}/...` and the like answers 404 and never reaches what follows the lookup.
Only the standard library is used (it runs before, and outside, the schemathesis venv).
"""

import hashlib
import json
import struct
import sys
import urllib.error
import urllib.request
import zlib


def call(base, token, method, path, body=None, content_type="application/json"):
    data = None
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = content_type
    req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        sys.exit(f"schemathesis-data: {method} {path}: {e.code} {e.read().decode(errors='replace')}")


def png(width=16, height=16):
    """A small RGB PNG (green), made by hand."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x20\xa0\x40" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def main():
    base, token, orchard, out = sys.argv[1:5]
    base = base.rstrip("/")
    trees = call(base, token, "GET", f"/api/trees?orchard={orchard}&limit=3&sort=id")["features"]
    if not trees:
        sys.exit(f"schemathesis-data: orchard {orchard} has no trees")
    ids = [t["id"] for t in trees]
    codes = [t["properties"]["code"] for t in trees]
    gtin = "09506000134352"
    lot = call(
        base,
        token,
        "POST",
        "/api/lots",
        {"orchard_id": orchard, "trees": "whole_orchard", "harvest_date": "2026-06-15", "weight_kg": 1200.5,
         "boxes": 80, "packing_house": "PH-EATIEU-01", "gtin": gtin},
    )["lot"]["code"]
    tags = call(base, token, "POST", "/api/tags", {"count": 2})["codes"]
    image = png()
    call(base, token, "POST", f"/api/trees/{ids[0]}/photos", image, "image/png")
    photo = hashlib.sha256(image).hexdigest()

    dictionaries = {
        "tree": [str(i) for i in ids[:2]] + codes[:2],
        # DELETE /api/trees/{id} (an integer id) has a tree of its own, so the others keep theirs.
        "doomed": ids[2:],
        "version": ['"1"', '"2"', "1"],
        "orchard": [orchard],
        "lot": [lot],
        "gtin": [gtin],
        "tag": tags,
        "code": codes[:1] + tags[:1] + [lot],
        "photo": [photo],
        "collection": ["trees", "orchards"],
        "feature": [str(ids[0]), codes[0], orchard],
    }
    # ({selector: value}, {parameter: dictionary}): which operations, and their parameters' dictionaries.
    def paths(regex):
        return {"include-path-regex": regex}

    bindings = [
        (
            {"include-path-regex": r"^/api/trees/\{id\}", "exclude-name": "DELETE /api/trees/{id}"},
            {"path.id": "tree", "header.If-Match": "version"},
        ),
        ({"include-name": "DELETE /api/trees/{id}"}, {"path.id": "doomed", "header.If-Match": "version"}),
        (paths(r"^/api/orchards/\{id\}$"), {"path.id": "orchard"}),
        (paths(r"^/api/lots/\{code\}"), {"path.code": "lot"}),
        (paths(r"^/api/tags/\{code\}"), {"path.code": "tag"}),
        (paths(r"^/api/scans/\{code\}"), {"path.code": "code"}),
        (paths(r"^/api/photos/\{sha256\}$"), {"path.sha256": "photo"}),
        (paths(r"^/t/\{code\}$"), {"path.code": "code"}),
        (paths(r"^/l/\{code\}$"), {"path.code": "lot"}),
        (paths(r"^/01/\{gtin\}/10/\{lot\}$"), {"path.gtin": "gtin", "path.lot": "lot"}),
        (paths(r"^/ogc/collections/\{collectionId\}"), {"path.collectionId": "collection", "path.featureId": "feature"}),
    ]
    lines = [f"# Made by scripts/schemathesis-data.py for {base}", ""]
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {toml_list(values)}", ""]
    for selectors, params in bindings:
        lines.append("[[operations]]")
        lines += [f"{key} = '{value}'" for key, value in selectors.items()]  # TOML literal strings
        inline = ", ".join(f'"{p}" = {{ dictionary = "{d}", probability = 0.5 }}' for p, d in params.items())
        lines += [f"parameters = {{ {inline} }}", ""]
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print(f"schemathesis-data: trees {ids[:2]} {codes[:2]}, lot {lot}, tags {tags}, photo {photo[:12]}...")


if __name__ == "__main__":
    main()
