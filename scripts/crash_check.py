#!/usr/bin/env python3
"""Crash safety of `orchardmap serve`: kill -9 during writes under load and during a large import,
restart, and check that the database is consistent, that every acknowledged write is there and
that no import is half-applied. Python 3 standard library only; driven by scripts/crash-check.sh.

Each iteration, on one database kept from iteration to iteration:
  1. the server runs (`serve --rate-limit 0`); concurrent writers PATCH trees with If-Match (each
     writer owns its trees), POST new trees and POST diary records, logging every write answered
     2xx (acknowledged) with its values and version, and the one write each has in flight;
  2. meanwhile one HTTP import (POST /api/imports) of a generated survey of --rows trees, in an
     area of its own;
  3. kill -9 at a random moment 0.3-5 s into the load, or (SQLite, every third iteration) while
     the import's commit is writing the WAL;
  4. with the server dead, the database itself: PRAGMA integrity_check = ok, foreign_key_check
     empty (PostgreSQL: the same references by query), every acknowledged write present with its
     version and values (or the next version, when a write was in flight), every acknowledged
     tree and record present, every import all or nothing (its area holds 0 trees and no import
     row, or all its rows, its import row and its survey), the change log consistent (sequence
     ranges increasing without overlap, every tree covered by exactly `version` change entries,
     `version - 1` history rows, no change naming an unknown tree);
  5. restart on the same database: the server's tree count equals the database's, and the
     acknowledged writes and each import area read back the same through the API.
The last server is stopped with SIGTERM and must exit 0. Exit status: 0 when no check failed,
1 otherwise (every violation is printed), 2 on a usage or setup error.
"""

import argparse
import hashlib
import http.client
import itertools
import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ORCHARD = "DL-CK-EATIEU-001"
# Imports go to bands of 0.05° latitude from 11.0° N (one band an iteration); created trees to
# 10.5-10.9° N; the bundled sample lies around 12.5-13° N. No two meet within the de-duplication
# radius, so every import row is accepted.
IMPORT_LAT0, BAND, IMPORT_LON0, GRID = 11.0, 0.05, 107.5, 0.0001
COLUMNS = 300
CREATE_LAT, CREATE_LON = (10.5, 10.9), (107.5, 107.8)


def log(msg):
    print(f"crash-check: {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# The server


class Server:
    """`orchardmap serve` on a free port; stderr to a log file."""

    def __init__(self, binary, db, work, name, extra=()):
        self.log_path = os.path.join(work, f"{name}.log")
        args = [binary, "serve", "--db", db, "--bind", "127.0.0.1:0", "--rate-limit", "0",
                "--keys", os.path.join(work, "keys.json"), *extra]
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        with open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, env=env)
        lines = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=600).decode()
        except queue.Empty:
            self.proc.kill()
            raise SystemExit(f"crash-check: the server did not start within 600 s; see {self.log_path}")
        if "http://" not in line:
            self.proc.wait()
            raise SystemExit(f"crash-check: the server did not start: {self.tail()}")
        words = line.split()
        self.trees = int(words[2])
        url = next(w for w in words if w.startswith("http://")).rstrip("/")
        host, port = url[len("http://"):].split(":")
        self.host, self.port = host, int(port)

    def tail(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-4000:]

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def terminate(self, within):
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


class Client:
    """One keep-alive HTTP connection."""

    def __init__(self, server, token, timeout=60):
        self.conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method, path, body=None, headers=None):
        h = dict(self.auth)
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=body, headers=h)
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def json(self, method, path, body=None, headers=None):
        status, hdrs, data = self.request(method, path, body, headers)
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = None
        return status, hdrs, doc

    def close(self):
        self.conn.close()


# ---------------------------------------------------------------------------------------------
# What the clients were told


class Ledger:
    """Acknowledged state, kept across iterations (the database is too)."""

    def __init__(self):
        # tree id -> {"version", "values", "pending": (version, values) | None}
        self.trees = {}
        self.created = {}  # tree id -> values (acknowledged POST /api/trees)
        self.records = {}  # record id -> (tree id, product, amount_kg, note)
        self.imports = []  # {"iteration", "sha", "rows", "band", "acked", "present"}
        self.lock = threading.Lock()


def tree_values(feature):
    p = feature["properties"]
    return {"health": p["health"], "height_m": p["height_m"], "girth_cm": p["girth_cm"]}


class Stats:
    def __init__(self):
        self.acked = {"patch": 0, "create": 0, "record": 0, "import": 0}
        self.refused = {}
        self.lock = threading.Lock()

    def ack(self, kind):
        with self.lock:
            self.acked[kind] += 1

    def refuse(self, kind, status):
        with self.lock:
            key = f"{kind} {status}"
            self.refused[key] = self.refused.get(key, 0) + 1


def patch_writer(server, token, ids, ledger, stats, violations, stop, rng):
    """PATCHes its own trees, If-Match the version it was last told."""
    client = Client(server, token)
    try:
        while not stop.is_set():
            tid = rng.choice(ids)
            entry = ledger.trees.get(tid)
            if entry is None or entry.get("stale"):
                status, hdrs, doc = client.json("GET", f"/api/trees/{tid}")
                if status != 200:
                    violations.append(f"GET /api/trees/{tid} answered {status} while the server ran")
                    return
                seen = {"version": doc["properties"]["version"], "values": tree_values(doc), "pending": None}
                if entry is not None and seen["version"] != entry["version"]:
                    violations.append(f"tree {tid}: a PATCH refused with {entry['refused'][0]} was applied: "
                                      f"version {seen['version']} {seen['values']}, refused {entry['refused'][1]}")
                entry = ledger.trees[tid] = seen
            values = entry["values"]
            while values == entry["values"]:  # an unchanged tree is answered without a new version
                values = {
                    "health": rng.choice(["good", "fair", "poor", "dead"]),
                    "height_m": rng.randint(100, 2500) / 100,
                    "girth_cm": rng.randint(100, 30000) / 100,
                }
            entry["pending"] = (entry["version"] + 1, values)
            status, hdrs, doc = client.json(
                "PATCH", f"/api/trees/{tid}", values, {"If-Match": f'"{entry["version"]}"'})
            if status == 200:
                version = doc["properties"]["version"]
                if version != entry["version"] + 1 or tree_values(doc) != values:
                    violations.append(f"tree {tid}: PATCH answered version {version} {tree_values(doc)}, "
                                      f"expected {entry['version'] + 1} {values}")
                entry.update(version=version, values=values, pending=None)
                stats.ack("patch")
            else:
                # Refused: it must not have been applied (the next read, and the database, tell).
                stats.refuse("patch", status)
                entry["stale"] = True
                entry["refused"] = (status, entry.pop("pending"))
                entry["pending"] = None
    except (OSError, http.client.HTTPException):
        pass  # the server is gone: the write in flight stays pending
    finally:
        client.close()


def creator(server, token, ledger, stats, stop, rng, pending):
    client = Client(server, token)
    try:
        while not stop.is_set():
            values = {
                "lon": round(rng.uniform(*CREATE_LON), 7),
                "lat": round(rng.uniform(*CREATE_LAT), 7),
                "cultivar": "Ri6",
                "health": rng.choice(["good", "fair", "poor"]),
                "orchard": ORCHARD,
                "planted_year": rng.randint(2012, 2023),
                "height_m": rng.randint(100, 900) / 100,
            }
            pending.append(values)
            status, hdrs, doc = client.json("POST", "/api/trees", values)
            if status == 201:
                with ledger.lock:
                    ledger.created[doc["id"]] = values
                pending.pop()
                stats.ack("create")
            else:
                stats.refuse("create", status)
                pending.pop()
    except (OSError, http.client.HTTPException):
        pass
    finally:
        client.close()


def recorder(server, token, ids, ledger, stats, stop, rng, iteration, pending):
    client = Client(server, token)
    n = 0
    try:
        while not stop.is_set():
            tid = rng.choice(ids)
            n += 1
            amount = rng.randint(1, 500) / 100
            note = f"crash-check {iteration}.{n}"
            body = {"date": "2025-06-01", "kind": "fertiliser", "product": "NPK 16-16-8", "amount_kg": amount,
                    "note": note}
            pending.append((tid, "NPK 16-16-8", amount, note))
            status, hdrs, doc = client.json("POST", f"/api/trees/{tid}/records", body)
            pending.pop()
            if status == 201:
                with ledger.lock:
                    ledger.records[doc["id"]] = (tid, "NPK 16-16-8", amount, note)
                stats.ack("record")
            else:
                stats.refuse("record", status)
    except (OSError, http.client.HTTPException):
        pass
    finally:
        client.close()


def survey(rows, band):
    """A survey of `rows` trees on an 11-m grid in latitude band `band`."""
    out = ["lat,lon,accuracy_m,cultivar,planted_year,health,orchard,surveyed_at"]
    lat0 = IMPORT_LAT0 + band * BAND
    for i in range(rows):
        lat = lat0 + (i // COLUMNS) * GRID
        lon = IMPORT_LON0 + (i % COLUMNS) * GRID
        out.append(f"{lat:.7f},{lon:.7f},3.0,Musang King,2019,good,{ORCHARD},2025-03-03T01:16:17Z")
    return ("\n".join(out) + "\n").encode()


def band_box(band):
    lat0 = IMPORT_LAT0 + band * BAND
    return (IMPORT_LON0 - GRID / 2, lat0 - GRID / 2, IMPORT_LON0 + COLUMNS * GRID, lat0 + BAND - GRID)


def importer(server, token, data, record, delay, stop):
    if stop.wait(delay):
        return
    boundary = "crash-check-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"crash.csv\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    client = Client(server, token, timeout=600)
    record["sent"] = time.monotonic()
    try:
        status, hdrs, doc = client.json(
            "POST", "/api/imports", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        record["status"] = status
        record["report"] = doc
        record["acked"] = status == 201
    except (OSError, http.client.HTTPException):
        pass
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# The database, read directly


class SqliteDb:
    def __init__(self, path):
        self.path = path

    def connect(self):
        return sqlite3.connect(self.path, timeout=30)

    def query(self, sql, args=()):
        con = self.connect()
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def stream(self, sql):
        con = self.connect()
        try:
            yield from con.execute(sql)
        finally:
            con.close()

    def structural(self):
        bad = []
        con = self.connect()
        try:
            check = con.execute("PRAGMA integrity_check").fetchall()
            if check != [("ok",)]:
                bad.append(f"PRAGMA integrity_check: {check[:5]}")
            fk = con.execute("PRAGMA foreign_key_check").fetchall()
            if fk:
                bad.append(f"PRAGMA foreign_key_check: {len(fk)} rows, e.g. {fk[:5]}")
            seq = dict(con.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
            top = con.execute("SELECT max(seq) FROM changes").fetchone()[0] or 0
            if seq.get("changes", 0) < top:
                bad.append(f"sqlite_sequence says changes reach {seq.get('changes')}, below seq {top}")
        finally:
            con.close()
        return bad

    def placeholders(self, n):
        return ",".join("?" * n)


class PgDb:
    """PostgreSQL through psql (no driver outside the standard library)."""

    def __init__(self, url):
        self.url = url

    def query(self, sql, args=()):
        for a in args:
            sql = sql.replace("?", pg_literal(a), 1)
        out = subprocess.run(["psql", self.url, "-AtX", "-F", "\x1f", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"psql: {out.stderr.strip()} in {sql[:200]}")
        return [tuple(pg_value(v) for v in line.split("\x1f")) for line in out.stdout.splitlines()]

    def stream(self, sql):
        yield from self.query(sql)

    def structural(self):
        bad = []
        for what, sql in [
            ("trees naming no orchard", "SELECT count(*) FROM trees t WHERE NOT EXISTS "
                                        "(SELECT 1 FROM orchards o WHERE o.id = t.orchard_id)"),
            ("trees naming no survey", "SELECT count(*) FROM trees t WHERE t.survey_id IS NOT NULL AND NOT EXISTS "
                                       "(SELECT 1 FROM surveys s WHERE s.id = t.survey_id)"),
            ("imports naming no survey", "SELECT count(*) FROM imports i WHERE NOT EXISTS "
                                         "(SELECT 1 FROM surveys s WHERE s.id = i.survey_id)"),
            ("records of unknown trees", "SELECT count(*) FROM tree_records r WHERE NOT EXISTS "
                                         "(SELECT 1 FROM trees t WHERE t.id = r.tree_id) AND NOT EXISTS "
                                         "(SELECT 1 FROM tree_history h WHERE h.tree_id = r.tree_id)"),
            ("duplicate codes", "SELECT count(*) FROM (SELECT code_serial FROM trees GROUP BY code_serial "
                                "HAVING count(*) > 1) d"),
        ]:
            n = self.query(sql)[0][0]
            if n:
                bad.append(f"{what}: {n}")
        return bad

    def placeholders(self, n):
        return ",".join("?" * n)


def pg_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def pg_value(text):
    if text == "":
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def chunks(seq, n=500):
    seq = list(seq)
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def same(a, b):
    return a is None and b is None or a is not None and b is not None and abs(a - b) < 1e-9


def check_database(db, ledger, pending_creates, pending_records):
    """Everything checked with the server dead. Returns (violations, facts)."""
    bad = list(db.structural())
    facts = {}

    # Acknowledged PATCHes: the acknowledged version and values, or the one write in flight.
    for part in chunks(ledger.trees):
        got = {r[0]: r[1:] for r in db.query(
            f"SELECT id, version, health, height_m, girth_cm FROM trees WHERE id IN ({db.placeholders(len(part))})",
            part)}
        for tid in part:
            e = ledger.trees[tid]
            if tid not in got:
                bad.append(f"tree {tid} (acknowledged version {e['version']}) is missing")
                continue
            version, health, height, girth = got[tid]
            now = {"health": health, "height_m": height, "girth_cm": girth}
            ok = [(e["version"], e["values"])] + ([e["pending"]] if e.get("pending") else [])
            if not any(version == v and now["health"] == vals["health"] and same(now["height_m"], vals["height_m"])
                       and same(now["girth_cm"], vals["girth_cm"]) for v, vals in ok):
                bad.append(f"tree {tid}: stored version {version} {now}, acknowledged {e['version']} {e['values']}"
                           f"{' or in flight ' + str(e['pending']) if e.get('pending') else ''}")
            e["db"] = (version, now)

    # Acknowledged new trees and records.
    for part in chunks(ledger.created):
        got = {r[0]: r[1:] for r in db.query(
            f"SELECT id, lon, lat, health, height_m, planted_year, orchard_id FROM trees "
            f"WHERE id IN ({db.placeholders(len(part))})", part)}
        for tid in part:
            v = ledger.created[tid]
            g = got.get(tid)
            if g is None:
                bad.append(f"created tree {tid} (acknowledged 201) is missing")
            elif not (same(g[0], v["lon"]) and same(g[1], v["lat"]) and g[2] == v["health"]
                      and same(g[3], v["height_m"]) and g[4] == v["planted_year"] and g[5] == v["orchard"]):
                bad.append(f"created tree {tid}: stored {g}, acknowledged {v}")
    for part in chunks(ledger.records):
        got = {r[0]: r[1:] for r in db.query(
            f"SELECT id, tree_id, details, note FROM tree_records WHERE id IN ({db.placeholders(len(part))})", part)}
        for rid in part:
            tid, product, amount, note = ledger.records[rid]
            g = got.get(rid)
            if g is None:
                bad.append(f"record {rid} of tree {tid} (acknowledged 201) is missing")
                continue
            details = json.loads(g[1])
            if g[0] != tid or details.get("product") != product or not same(details.get("amount_kg"), amount) \
                    or g[2] != note:
                bad.append(f"record {rid}: stored {g}, acknowledged {(tid, product, amount, note)}")

    # Records never acknowledged: only the one in flight may be stored beyond the acknowledged.
    extra = [r for r in db.query("SELECT id, tree_id, details, note FROM tree_records WHERE note LIKE 'crash-check %'")
             if r[0] not in ledger.records]
    in_flight = {p[3]: p for p in pending_records}
    for rid, tid, details, note in extra:
        p = in_flight.get(note)
        if p is None or p[0] != tid:
            bad.append(f"record {rid} ({note}) is stored but was neither acknowledged nor in flight")
        else:
            ledger.records[rid] = p

    # Created trees never acknowledged: at most the ones in flight can exist beyond the acknowledged.
    lo, hi = CREATE_LAT
    in_band = db.query("SELECT count(*) FROM trees WHERE lat BETWEEN ? AND ? AND lon BETWEEN ? AND ?",
                       (lo, hi, CREATE_LON[0], CREATE_LON[1]))[0][0]
    if not len(ledger.created) <= in_band <= len(ledger.created) + pending_creates:
        bad.append(f"{in_band} created trees stored, {len(ledger.created)} acknowledged and "
                   f"{pending_creates} in flight")
    else:
        # The ones in flight that did commit are acknowledged by the database now: learn their ids.
        if in_band > len(ledger.created):
            for tid, lon, lat, health, height, year in db.query(
                    "SELECT id, lon, lat, health, height_m, planted_year FROM trees "
                    "WHERE lat BETWEEN ? AND ? AND lon BETWEEN ? AND ?", (lo, hi, CREATE_LON[0], CREATE_LON[1])):
                if tid not in ledger.created:
                    ledger.created[tid] = {"lon": lon, "lat": lat, "health": health, "height_m": height,
                                           "planted_year": year, "orchard": ORCHARD, "cultivar": "Ri6"}

    # Imports: all or nothing, each with its survey and import row; an acknowledged one complete.
    by_sha = {r[0]: r[1:] for r in db.query("SELECT file_sha256, survey_id, trees_inserted FROM imports")}
    per_survey = dict(db.query("SELECT survey_id, count(*) FROM trees WHERE survey_id IS NOT NULL GROUP BY survey_id"))
    for imp in ledger.imports:
        x0, y0, x1, y1 = band_box(imp["band"])
        n = db.query("SELECT count(*) FROM trees WHERE lat BETWEEN ? AND ? AND lon BETWEEN ? AND ?",
                     (y0, y1, x0, x1))[0][0]
        row = by_sha.get(imp["sha"])
        name = f"import of iteration {imp['iteration']}"
        if n not in (0, imp["rows"]):
            bad.append(f"{name} is half-applied: {n} of {imp['rows']} trees")
        if (row is not None) != (n == imp["rows"]):
            bad.append(f"{name}: {n} trees but {'an' if row else 'no'} import row")
        if row is not None and (row[1] != imp["rows"] or per_survey.get(row[0], 0) != imp["rows"]):
            bad.append(f"{name}: import row says {row[1]} inserted, its survey has {per_survey.get(row[0], 0)} trees")
        if imp["acked"] and n != imp["rows"]:
            bad.append(f"{name} was acknowledged but {n} of {imp['rows']} trees are stored")
        if imp.get("present") is not None and imp["present"] != n:
            bad.append(f"{name}: {n} trees now, {imp['present']} at the previous check")
        imp["present"] = n
    orphans = db.query("SELECT count(*) FROM surveys s WHERE NOT EXISTS (SELECT 1 FROM imports i WHERE i.survey_id = s.id)")
    if orphans[0][0]:
        bad.append(f"{orphans[0][0]} surveys without an import row (an import half-applied)")

    # The change log: ranges in increasing, non-overlapping sequence order; per tree, exactly
    # `version` entries; `version - 1` history rows; no entry naming an unknown tree.
    changes = db.query("SELECT seq, tree_id, tree_id_to FROM changes ORDER BY seq")
    top_id = max([c[2] or c[1] for c in changes] + [0])
    max_tree = db.query("SELECT coalesce(max(id), 0) FROM trees")[0][0]
    size = max(top_id, max_tree) + 2
    diff = [0] * (size + 1)
    prev = 0
    for seq, a, b in changes:
        b = a if b is None else b
        first = seq - (b - a)
        if b < a or first <= prev:
            bad.append(f"change {seq} (trees {a}..{b}) overlaps the change before (seq {prev})")
        prev = seq
        diff[a] += 1
        diff[b + 1] -= 1
    cover = list(itertools.accumulate(diff))
    history = dict(db.query("SELECT tree_id, count(*) FROM tree_history GROUP BY tree_id"))
    removed = {r[0] for r in db.query("SELECT DISTINCT tree_id FROM tree_history WHERE removal_reason IS NOT NULL")}
    present = bytearray(size + 1)
    trees = 0
    wrong = []
    for tid, version in db.stream("SELECT id, version FROM trees ORDER BY id"):
        trees += 1
        present[tid] = 1
        if cover[tid] != version or history.get(tid, 0) != version - 1:
            wrong.append((tid, version, cover[tid], history.get(tid, 0)))
    if wrong:
        bad.append(f"{len(wrong)} trees whose change entries or history rows do not match their version "
                   f"(id, version, changes, history): {wrong[:5]}")
    unknown = [i for i in range(1, size) if cover[i] and not present[i] and i not in removed]
    if unknown:
        bad.append(f"{len(unknown)} change entries name trees that do not exist, e.g. {unknown[:5]}")
    facts["trees"] = trees
    facts["changes"] = len(changes)
    return bad, facts


def check_api(server, token, ledger, trees, bands):
    """The restarted server reads back what the database holds."""
    bad = []
    client = Client(server, token)
    try:
        status, _, health = client.json("GET", "/healthz")
        if server.trees != trees or health.get("trees") != trees:
            bad.append(f"the server holds {server.trees} (healthz {health.get('trees')}) trees, the database {trees}")
        for tid, e in ledger.trees.items():
            status, _, doc = client.json("GET", f"/api/trees/{tid}")
            version, values = e.get("db", (e["version"], e["values"]))
            if status != 200:
                bad.append(f"GET /api/trees/{tid}: {status}")
            elif doc["properties"]["version"] != version or tree_values(doc) != values:
                bad.append(f"tree {tid}: served version {doc['properties']['version']} {tree_values(doc)}, "
                           f"stored {version} {values}")
        for tid in ledger.created:
            status, _, _ = client.json("GET", f"/api/trees/{tid}")
            if status != 200:
                bad.append(f"created tree {tid}: GET answered {status}")
        by_tree = {}
        for rid, (tid, *_rest) in ledger.records.items():
            by_tree.setdefault(tid, set()).add(rid)
        for tid, rids in by_tree.items():
            status, _, doc = client.json("GET", f"/api/trees/{tid}/records")
            served = {r["id"] for r in (doc or {}).get("records", [])}
            if status != 200 or not rids <= served:
                bad.append(f"tree {tid}: records {sorted(rids - served)[:5]} not served ({status})")
        for imp in bands:
            x0, y0, x1, y1 = band_box(imp["band"])
            status, _, doc = client.json("GET", f"/api/trees?bbox={x0},{y0},{x1},{y1}&limit=1")
            if status != 200 or doc.get("numberMatched") != imp["present"]:
                bad.append(f"import of iteration {imp['iteration']}: the server finds "
                           f"{doc.get('numberMatched') if doc else status} trees in its area, the database "
                           f"{imp['present']}")
    finally:
        client.close()
    return bad


# ---------------------------------------------------------------------------------------------
# Killing at the import's commit (SQLite)


def wait_for_commit(path, deadline, rng):
    """Returns once the import's commit is writing the WAL, or at the deadline; True when caught.

    The import holds the write lock for its whole transaction and writes nothing to the WAL before
    its commit (its page cache holds every page); single edits hold the lock for milliseconds and
    write the WAL at each commit. So: the lock held with the WAL untouched for 50 ms is the
    import's transaction, and the next change of the WAL is its commit."""
    wal = path + "-wal"
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    mark, quiet_since = None, None
    try:
        while time.monotonic() < deadline:
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
                mark, quiet_since = None, None
            except sqlite3.OperationalError:
                try:
                    st = os.stat(wal)
                except FileNotFoundError:
                    continue
                now, seen = time.monotonic(), (st.st_mtime_ns, st.st_size)
                if seen != mark:
                    if quiet_since is not None and now - quiet_since > 0.05:
                        # At once (mid-commit), or a little later (the commit may be over).
                        time.sleep(rng.choice([0.0, rng.uniform(0, 0.04)]))
                        return True
                    mark, quiet_since = seen, now
            time.sleep(0.0005)
        return False
    finally:
        probe.close()


# ---------------------------------------------------------------------------------------------


def admin_token(binary, db):
    out = subprocess.run([binary, "user", "add", "--name", f"crash-check-{os.getpid()}-{time.time_ns()}",
                          "--role", "admin", "--db", db], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"crash-check: user add failed: {out.stderr}")
    return out.stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("iterations", type=int, nargs="?", default=20)
    ap.add_argument("--bin", default="target/release/orchardmap")
    ap.add_argument("--db", help="a postgres:// URL of a database to create and drop (default: SQLite in --work)")
    ap.add_argument("--rows", type=int, default=50_000, help="rows of each iteration's import")
    ap.add_argument("--writers", type=int, default=4, help="PATCH writers (plus one creating trees, one adding records)")
    ap.add_argument("--trees-per-writer", type=int, default=40)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--work", help="folder for the database and logs (default: a temporary one, removed)")
    args = ap.parse_args()

    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    work = args.work or tempfile.mkdtemp(prefix="crash-check-")
    os.makedirs(work, exist_ok=True)
    postgres = bool(args.db)
    if postgres:
        base, name = args.db.rsplit("/", 1)
        admin = f"{base}/postgres"
        for sql in (f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"):
            out = subprocess.run(["psql", admin, "-qc", sql], capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"crash-check: {sql}: {out.stderr.strip()}")
        location, db = args.db, PgDb(args.db)
    else:
        location = os.path.join(work, "crash.db")
        db = SqliteDb(location)
    log(f"{args.iterations} iterations, seed {seed}, {'PostgreSQL ' + location if postgres else location}, "
        f"binary {args.bin}")

    # The sample (10,158 trees in 100 orchards), then an account.
    server = Server(args.bin, location, work, "prepare", ["--demo"])
    sample_trees = server.trees
    token = admin_token(args.bin, location)
    ledger, totals = Ledger(), {"patch": 0, "create": 0, "record": 0, "import": 0}
    outcomes = {"not sent": 0, "rolled back": 0, "committed, not acknowledged": 0, "committed and acknowledged": 0}
    modes = {"random": 0, "commit": 0, "commit (missed)": 0}
    violations_all = []
    started = time.monotonic()
    try:
        for it in range(args.iterations):
            violations = []
            stats, stop = Stats(), threading.Event()
            ids = rng.sample(range(1, sample_trees + 1), args.writers * args.trees_per_writer + 50)
            owned = [ids[k * args.trees_per_writer:(k + 1) * args.trees_per_writer] for k in range(args.writers)]
            record_ids = ids[args.writers * args.trees_per_writer:]
            data = survey(args.rows, it)
            imp = {"iteration": it, "sha": hashlib.sha256(data).hexdigest(), "rows": args.rows, "band": it,
                   "acked": False}
            pending_creates, pending_records = [], []
            threads = [threading.Thread(target=patch_writer, args=(server, token, owned[k], ledger, stats, violations,
                                                                   stop, random.Random(rng.random())))
                       for k in range(args.writers)]
            threads.append(threading.Thread(target=creator, args=(server, token, ledger, stats, stop,
                                                                  random.Random(rng.random()), pending_creates)))
            threads.append(threading.Thread(target=recorder, args=(server, token, record_ids, ledger, stats, stop,
                                                                   random.Random(rng.random()), it, pending_records)))
            threads.append(threading.Thread(target=importer, args=(server, token, data, imp, rng.uniform(0, 1.0), stop)))
            mode = "commit" if not postgres and it % 3 == 2 else "random"
            t0 = time.monotonic()
            for t in threads:
                t.start()
            if mode == "commit":
                caught = wait_for_commit(location, t0 + 120, rng)
                mode = "commit" if caught else "commit (missed)"
            else:
                time.sleep(rng.uniform(0.3, 5.0))
            at = time.monotonic() - t0
            if server.proc.poll() is not None:
                violations.append(f"the server exited by itself ({server.proc.returncode}): {server.tail()}")
            server.kill9()
            stop.set()
            for t in threads:
                t.join(timeout=60)
            modes[mode] += 1

            ledger.imports.append(imp)
            in_flight = sum(1 for e in ledger.trees.values() if e.get("pending"))
            bad, facts = check_database(db, ledger, len(pending_creates), pending_records)
            violations += bad
            present = imp["present"]
            if imp["acked"]:
                outcome = "committed and acknowledged"
                report = imp.get("report") or {}
                if report.get("inserted") != args.rows:
                    violations.append(f"import acknowledged with {report.get('inserted')} inserted, not {args.rows}")
            elif present:
                outcome = "committed, not acknowledged"
            elif "sent" in imp:
                outcome = "rolled back"
            else:
                outcome = "not sent"
            outcomes[outcome] += 1

            server = Server(args.bin, location, work, f"iteration-{it}")
            violations += check_api(server, token, ledger, facts["trees"], ledger.imports)
            # What the database holds is now the acknowledged state.
            for e in ledger.trees.values():
                if "db" in e:
                    e["version"], e["values"] = e.pop("db")
                e["pending"] = None
                e.pop("stale", None)
            acked = sum(stats.acked.values()) + (1 if imp["acked"] else 0)
            for k, v in stats.acked.items():
                totals[k] += v
            totals["import"] += 1 if imp["acked"] else 0
            log(f"iteration {it + 1}/{args.iterations}: killed at {at:.2f} s ({mode}); acknowledged "
                f"{stats.acked['patch']} PATCH, {stats.acked['create']} POST tree, {stats.acked['record']} record, "
                f"import {'yes' if imp['acked'] else 'no'} ({acked} writes); {in_flight} PATCH in flight; import: "
                f"{outcome}; {facts['trees']} trees, {facts['changes']} change rows; refused {stats.refused or 'none'}; "
                f"{len(violations)} violations")
            for v in violations:
                log(f"  VIOLATION: {v}")
            violations_all += [f"iteration {it + 1}: {v}" for v in violations]
        code = server.terminate(within=45)
        if code != 0:
            violations_all.append(f"the last server did not exit 0 on SIGTERM within 45 s ({code}): {server.tail()}")
    finally:
        if server.proc.poll() is None:
            server.kill9()
        if postgres:
            subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)
        if not args.work and not violations_all:
            subprocess.run(["rm", "-rf", work])

    summary = {
        "iterations": args.iterations,
        "seed": seed,
        "backend": "postgres" if postgres else "sqlite",
        "import_rows": args.rows,
        "acknowledged_writes_checked": sum(totals.values()),
        "acknowledged": totals,
        "tree_states_checked": len(ledger.trees),
        "trees_created_checked": len(ledger.created),
        "records_checked": len(ledger.records),
        "imports": outcomes,
        "kills": modes,
        "violations": len(violations_all),
        "seconds": round(time.monotonic() - started, 1),
    }
    log("summary " + json.dumps(summary))
    if violations_all:
        log(f"FAIL: {len(violations_all)} violations; database and logs kept in {work}")
        return 1
    log("ok: no violation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
