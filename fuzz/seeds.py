#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into fuzz/corpus/<target>/ from the
project's own test files and sample data: `python3 fuzz/seeds.py [TILE_FILE...]`.
Files are named by the SHA-1 of their content, as libFuzzer names corpus
entries, so running it again adds only what is missing. The committed corpora
started from these seeds, were grown by fuzzing and minimised with `-merge=1`.

Survey inputs start with two option bytes (see fuzz/src/lib.rs):
byte a: bit 0 force the format, bit 1 which format name, bit 2 set `crs`,
bits 3-5 which CRS, bit 6 `swap_xy`, bit 7 a `--map field=column` first line;
byte b: bits 0-1 file extension, bits 2-3 reader buffer, bit 4 `orchard`,
bit 5 `region`.
"""

import hashlib
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


def put(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def head_lines(data, n):
    return b"".join(data.splitlines(keepends=True)[:n])


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, wire, payload):
    key = varint(number << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def zz(n):
    return (n << 1) ^ (n >> 31)


def packed(values):
    return b"".join(varint(v) for v in values)


def mvt_tile():
    """A small Mapbox Vector Tile: a point, a line and a polygon with a hole, with properties."""
    point = [9, zz(2048), zz(2048)]
    line = [9, zz(100), zz(100), 2 | 2 << 3, zz(50), zz(0), zz(0), zz(50)]
    square = [9, zz(10), zz(10), 2 | 3 << 3, zz(100), zz(0), zz(0), zz(100), zz(-100), zz(0), 15]
    hole = [9, zz(30), zz(-70), 2 | 3 << 3, zz(0), zz(40), zz(40), zz(0), zz(0), zz(-40), 15]
    features = [
        field(1, 0, 7) + field(2, 2, packed([0, 0, 1, 1])) + field(3, 0, 1) + field(4, 2, packed(point)),
        field(2, 2, packed([0, 2])) + field(3, 0, 2) + field(4, 2, packed(line)),
        field(1, 0, 9) + field(3, 0, 3) + field(4, 2, packed(square + hole)),
    ]
    values = [field(1, 2, b"Ri6"), field(4, 0, 2019), field(3, 1, struct.pack("<d", 4.5))]
    layer = field(15, 0, 2) + field(1, 2, b"trees")
    for f in features:
        layer += field(2, 2, f)
    for k in (b"cultivar", b"planted_year"):
        layer += field(3, 2, k)
    for v in values:
        layer += field(4, 2, v)
    layer += field(5, 0, 4096)
    return field(3, 2, layer) + field(3, 2, field(15, 0, 2) + field(1, 2, b"orchards") + field(5, 0, 4096))


def pmtiles_archive(tiles):
    """A PMTiles v3 archive, uncompressed, of `tiles`: (tile id, run length, bytes)."""
    entries, data, offset = [], b"", 0
    for tile_id, run, body in tiles:
        entries.append((tile_id, run, len(body), offset))
        data += body
        offset += len(body)
    directory = varint(len(entries))
    last = 0
    for tile_id, _, _, _ in entries:
        directory += varint(tile_id - last)
        last = tile_id
    directory += b"".join(varint(e[1]) for e in entries)
    directory += b"".join(varint(e[2]) for e in entries)
    prev_end = None
    for _, _, length, off in entries:
        directory += varint(0 if prev_end == off else off + 1)
        prev_end = off + length
    metadata = b'{"name":"trees","vector_layers":[{"id":"trees","fields":{}}]}'
    root_off = 127
    meta_off = root_off + len(directory)
    data_off = meta_off + len(metadata)
    header = b"PMTiles" + bytes([3])
    header += struct.pack("<QQQQQQQQ", root_off, len(directory), meta_off, len(metadata), data_off, 0, data_off, len(data))
    header += struct.pack("<QQQ", sum(e[1] for e in entries), len(entries), len(entries))
    header += bytes([1, 1, 1, 1, 0, 1])
    header += struct.pack("<iiii", 1080000000, 120000000, 1090000000, 130000000)
    header += bytes([0]) + struct.pack("<ii", 1085000000, 125000000)
    assert len(header) == 127
    return header + directory + metadata + data


def survey(target, data, a=0, b=0):
    put(target, bytes([a, b]) + data)


CRS_9218 = 0b100  # crs = EPSG:9218 (CRSS[0])
CRS_32648 = 0b100 | (2 << 3)
SMALL_BUFFER = 3 << 2  # 7-byte reader buffer
MID_BUFFER = 2 << 2  # 61-byte reader buffer


def main():
    trees = head_lines(read("data/trees.csv"), 8)
    kobo = read("importer/tests/data/kobo_vi.csv")
    odk = read("importer/tests/data/odk_central.csv")
    vn2000 = read("importer/tests/data/vn2000_daklak.csv")
    for data in (trees, kobo, odk):
        survey("survey_csv", data)
        survey("survey_csv", data, a=0b1, b=SMALL_BUFFER)
    survey("survey_csv", vn2000, a=CRS_9218)
    survey("survey_csv", vn2000, a=CRS_9218 | 0b100_0000, b=MID_BUFFER)
    survey("survey_csv", trees.replace(b",", b"\t"), b=1)
    survey("survey_csv", trees.replace(b",", b";").replace(b".", b","), b=2 | 0b10_0000)
    survey("survey_csv", b"lat=Vi do\n" + trees.replace(b"lat,", b"Vi do,", 1), a=0b1000_0000)
    survey("survey_csv", b"\xef\xbb\xbf" + trees.replace(b"\n", b"\r\n"), b=0b1_0000)
    survey("survey_csv", b'lat,lon,cultivar,health,orchard,code\n12.64,108.127,"Ri6","t\xe1\xbb\x91t",DL-CK-EATIEU-001,8NXQ33M\n')

    ndjson = read("importer/tests/data/trees.ndjson")
    qgis = read("importer/tests/data/qgis_vn2000.geojson")
    features = json.loads(read("data/trees.geojson"))["features"][:4]
    collection = json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False).encode()
    survey("survey_geojson", ndjson)
    survey("survey_geojson", ndjson, a=0b11, b=1 | SMALL_BUFFER)
    survey("survey_geojson", qgis)
    survey("survey_geojson", qgis, a=0b1, b=MID_BUFFER)
    survey("survey_geojson", collection)
    survey("survey_geojson", b"\x1e" + b"\n\x1e".join(json.dumps(f).encode() for f in features) + b"\n", b=3)
    survey("survey_geojson", collection.replace(b"[108", b"[12.6, 108", 1), a=CRS_32648 | 0b100_0000)

    gpx = read("importer/tests/data/handheld.gpx")
    survey("survey_gpx", gpx)
    survey("survey_gpx", gpx, a=0b1, b=1 | SMALL_BUFFER)
    survey("survey_gpx", b'<gpx version="1.1"><wpt lat="12.64" lon="108.127"><name>Ri6</name></wpt></gpx>', b=2)
    kml = read("importer/tests/data/google_earth.kml")
    survey("survey_kml", kml)
    survey("survey_kml", kml, a=0b1, b=1 | SMALL_BUFFER)
    survey(
        "survey_kml",
        b"<kml><Placemark><name>Ri6</name><Point><coordinates>108.127,12.64,0</coordinates></Point></Placemark></kml>",
        b=2,
    )

    orchards = json.loads(read("data/orchards.geojson"))["features"]
    for n in (1, 3):
        put("orchards_geojson", json.dumps({"type": "FeatureCollection", "features": orchards[:n]}, ensure_ascii=False).encode())
    put("orchards_geojson", json.dumps(orchards[4], ensure_ascii=False).encode())
    multi = dict(orchards[5])
    multi["geometry"] = {"type": "MultiPolygon", "coordinates": [orchards[5]["geometry"]["coordinates"], orchards[6]["geometry"]["coordinates"]]}
    put("orchards_geojson", json.dumps({"type": "FeatureCollection", "features": [multi]}).encode())
    nogeom = dict(orchards[7])
    nogeom["geometry"] = None
    put("orchards_geojson", json.dumps({"type": "FeatureCollection", "features": [nogeom]}).encode())

    crs = set()
    for line in read("geo-core/tests/data/crs-reference.csv").decode().splitlines()[1:]:
        crs.add(line.split(",")[0])
    for line in read("geo-core/tests/data/crs-reference-proj.tsv").decode().splitlines()[1:]:
        crs.add(line.split("\t")[0])
    crs.update([
        "epsg:9218", "  Epsg:9218\n", "EPSG: 9218", "9218", "urn:ogc:def:crs:EPSG::9218",
        "urn:ogc:def:crs:EPSG:9.9.1:9218", "http://www.opengis.net/def/crs/EPSG/0/9218", "CRS84", "OGC:CRS84",
        "urn:ogc:def:crs:OGC:1.3:CRS84", "http://www.opengis.net/def/crs/OGC/1.3/CRS84", "VN-2000 / TM-3 108-30",
        "+proj=utm +zone=48 +south +datum=WGS84", "+proj=merc +lat_ts=10 +a=6378137 +b=6378137",
        "+proj=tmerc +lon_0=105 +k_0=0.9999 +x_0=500000 +a=6378137 +rf=298.257222101 +towgs84=1,2,3",
        "proj=longlat ellps=GRS80 towgs84=-191.9,-39.3,-111.45,0.009,-0.02,0.004,0.25", "+proj=longlat +datum=WGS84",
    ])
    for text in sorted(crs):
        put("crs", text.encode())
    for text, points in [
        ("EPSG:9210", [(478084.7064, 1404503.7499), (108.3, 12.7)]),
        ("EPSG:3405", [(685668.1447, 1194493.8455), (106.7, 10.8)]),
        ("EPSG:3857", [(12028000.0, 1420000.0), (0.0, 85.06)]),
    ]:
        put("crs", text.encode() + b"\0" + b"".join(struct.pack("<dd", x, y) for x, y in points))

    for path in ["14/13000/7600.mvt", "/tiles/trees/14/13000/7600.mvt", "/tiles/trees/0/0/0.png",
                 "/tiles/trees/20/1048575/1048575@2x.png", "/tiles/trees/%31%34/13000/7600.mvt",
                 "24/16777215/16777215", "12/3277/1902", "/tiles/trees/21/0/0.mvt", "15/26100/15210.png"]:
        put("tile", path.encode())
    for z, x, y in [(0, 0, 0), (14, 13000, 7600), (24, (1 << 24) - 1, 0), (25, 0, 0), (3, 8, 1)]:
        put("tile", struct.pack("<III", z, x, y))
    tile = mvt_tile()
    put("tile", tile)
    put("tile", pmtiles_archive([(0, 1, tile), (1, 2, tile[:40]), (5, 1, b"\x1a\x00")]))
    for extra in sys.argv[1:]:
        # Tiles and PMTiles archives made by the project (e.g. `orchardmap tiles pack`).
        put("tile", read(extra))

    for q in ["bbox=108,12.5,108.2,12.8", "lon=108.127&lat=12.64&radius_m=50&limit=100&sort=distance",
              "lon=108.127&lat=12.64&k=5", "cultivar=Ri6,Monthong&health=good,fair&orchard=DL-CK-EATIEU-001",
              "planted_from=2015&planted_to=2020&province=%C4%90%E1%BA%AFk+L%E1%BA%AFk&q=8NXQ",
              "updated_since=2025-03-01T00:00:00Z&commune=Ea+Ti%C3%AAu&district=C%C6%B0+Kuin&planting_area_code=VN-DLOR-0145",
              "bbox=108,12.5,108.2,12.8&minzoom=10&maxzoom=18", "count=40&format=pdf&lot=L-2025-001",
              "bbox=-180,-90,180,90&limit=10000&cursor=abc", "lat=1e400&lon=nan&radius_m=-0"]:
        put("query", q.encode())


if __name__ == "__main__":
    main()
