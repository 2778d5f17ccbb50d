#!/usr/bin/env python3
"""Drives headless Chromium through the map page's #e2e self-test (see api/assets/map/app.js).

Usage: map-e2e.py BASE_URL OUT_DIR

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: requests on fd 3,
answers on fd 4, NUL-separated JSON), so nothing beyond the Python standard library is needed.
For each viewport (1280x800 and a 360x740 phone) and each data path (vector tiles, and the GeoJSON
fallback forced with #notiles) it loads

  BASE_URL/#e2e=overview  the first view: no error, features rendered, tree-coloured pixels on screen;
  BASE_URL/#e2e           the page zooms to a tree and clicks it: its popup shows the tree's code,

saving a screenshot of each in OUT_DIR. Exits 1 on any failure.

With MAP_E2E_TOKEN (an admin token, set by map-e2e.sh when it serves the sample itself), the tree the
self-test clicks (the first by id) first gets MARKUP in its cultivar and in its orchard's name: its
popup must show that markup as text, hold no element made from it and run none of its script.
"""

import base64
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib

# The health colours of api/src/routes/map.rs (HEALTH_COLORS) and the cluster colours (CLUSTER_STOPS).
TREE_COLORS = {
    "good": (0x1E, 0x9E, 0x4A),
    "fair": (0xE3, 0xB1, 0x00),
    "poor": (0xF0, 0x64, 0x0F),
    "dead": (0x6D, 0x4C, 0x41),
}
CLUSTER_COLORS = [(0x2E, 0x9D, 0x57), (0xD9, 0xA4, 0x00), (0xEE, 0x6A, 0x12), (0xB3, 0x26, 0x1E)]
TIMEOUT_S = int(os.environ.get("MAP_E2E_TIMEOUT", "90"))
# Text that would run a script if the popup parsed it as HTML (a cultivar holds at most 60 characters).
MARKUP = '<img src=x onerror="window.__omXss=1">'


def plant_markup(base, token):
    """Puts MARKUP into the cultivar of the first tree by id (the one the self-test clicks) and
    into its orchard's name, through the API."""

    def call(method, path, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.headers, json.loads(response.read() or b"null")

    _, first = call("GET", "/api/trees?limit=1&sort=id")
    tree = first["features"][0]
    headers, _ = call("GET", f"/api/trees/{tree['id']}")
    call("PATCH", f"/api/trees/{tree['id']}", {"cultivar": "Ri6 " + MARKUP}, {"If-Match": headers["ETag"]})
    orchard_name = "Vườn " + MARKUP + "<script>window.__omXss=2</script>"
    call("PATCH", f"/api/orchards/{tree['properties']['orchard']}", {"name": orchard_name})


def find_chromium():
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Browser:
    """A headless Chromium and a DevTools session on one page."""

    def __init__(self, binary, profile):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        # The child expects the pipe on fds 3 (reads) and 4 (writes). Copies first, in case the
        # pipe's own descriptors are 3 or 4; pass_fds=(3, 4) keeps them open across exec.
        def wire():
            r, w = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(r, 3)
            os.dup2(w, 4)

        args = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-unsafe-swiftshader",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--mute-audio",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            args, preexec_fn=wire, pass_fds=(3, 4), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def send(self, method, params=None, session=True):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.to_child, json.dumps(message).encode() + b"\0")
        deadline = time.time() + TIMEOUT_S
        while time.time() < deadline:
            reply = self._read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise RuntimeError(f"{method}: no answer in {TIMEOUT_S} s")

    def _read(self):
        while b"\0" not in self.buffer:
            chunk = os.read(self.from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def open_page(self, width, height, mobile):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)[
            "sessionId"
        ]
        self.send("Runtime.enable")
        self.send("Page.enable")
        # A page in the background gets no animation frames: MapLibre would never render.
        self.send("Page.bringToFront")
        self.send("Emulation.setFocusEmulationEnabled", {"enabled": True})
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )
        return target

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def console_errors(self):
        out = []
        for event in self.events:
            if event.get("method") == "Runtime.exceptionThrown":
                details = event["params"]["exceptionDetails"]
                out.append((details.get("exception") or {}).get("description") or details.get("text"))
            elif event.get("method") == "Runtime.consoleAPICalled" and event["params"]["type"] == "error":
                out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in event["params"]["args"]))
        return out

    def close(self):
        try:
            self.send("Browser.close", session=False)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def decode_png(data):
    """Pixels of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes) as (width, height, rows)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, f"unsupported PNG {depth=} {color=}"
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def count_colored(png, colors, tolerance=10):
    """How many pixels are within `tolerance` (per channel) of one of `colors`."""
    width, height, channels, rows = decode_png(png)
    wanted = set()
    for r, g, b in colors:
        for dr in range(-tolerance, tolerance + 1, 2):
            for dg in range(-tolerance, tolerance + 1, 2):
                for db in range(-tolerance, tolerance + 1, 2):
                    wanted.add(((r + dr) >> 1, (g + dg) >> 1, (b + db) >> 1))
    n = 0
    for row in rows:
        for x in range(0, width * channels, channels):
            if (row[x] >> 1, row[x + 1] >> 1, row[x + 2] >> 1) in wanted:
                n += 1
    return n


def run_page(browser, url, shot, width, height):
    browser.evaluate("document.title = 'navigating'")
    browser.send("Page.navigate", {"url": url})
    deadline = time.time() + TIMEOUT_S
    while time.time() < deadline:
        if browser.evaluate("document.title") == "e2e:done":
            break
        time.sleep(0.25)
    else:
        print(f"map e2e: {url}: the self-test did not finish in {TIMEOUT_S} s; console: {browser.console_errors()}")
    marks = browser.evaluate(
        "Object.fromEntries([...document.body.attributes].filter(a => a.name.startsWith('data-e2e-'))"
        ".map(a => [a.name.slice(9), a.value]))"
    )
    popup = browser.evaluate(
        "(document.querySelector('.maplibregl-popup .tree-popup') || {}).textContent || ''"
    )
    # What markup in the tree's text would have done, had the popup parsed it: elements, a script run.
    injected = browser.evaluate(
        "[typeof window.__omXss, document.querySelectorAll("
        "'.maplibregl-popup img[src=\"x\"], .maplibregl-popup script, .maplibregl-popup [onerror]').length]"
    )
    png = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"})["data"])
    with open(shot, "wb") as f:
        f.write(png)
    return marks, popup, injected, png


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    base, out = sys.argv[1].rstrip("/"), sys.argv[2]
    binary = find_chromium()
    if not binary:
        print("map e2e: SKIPPED (no chromium on PATH; apt-get install chromium)")
        return 0
    os.makedirs(out, exist_ok=True)
    failures = []
    token = os.environ.get("MAP_E2E_TOKEN")
    if token:
        plant_markup(base, token)
    for width, height, mobile in ((1280, 800, False), (360, 740, True)):
        for mode in ("tiles", "notiles"):
            suffix = "" if mode == "tiles" else "&notiles"
            with tempfile.TemporaryDirectory(prefix="map-e2e-chromium-") as profile:
                browser = Browser(binary, profile)
                try:
                    browser.open_page(width, height, mobile)
                    for step in ("overview", "click"):
                        name = f"map-{width}x{height}-{mode}-{step}"
                        hash_ = "#e2e=overview" if step == "overview" else "#e2e"
                        shot = os.path.join(out, name + ".png")
                        marks, popup, injected, png = run_page(
                            browser, f"{base}/?{step}{hash_}{suffix}", shot, width, height
                        )
                        problems = []
                        if marks.get("errors"):
                            problems.append("page errors: " + marks["errors"])
                        if marks.get("done") != "ok":
                            problems.append(f"self-test ended with {marks.get('done')!r}")
                        if int(marks.get("overview") or 0) == 0:
                            problems.append("nothing rendered in the first view")
                        colors = list(TREE_COLORS.values()) + (CLUSTER_COLORS if step == "overview" else [])
                        colored = count_colored(png, colors)
                        if colored < 200:
                            problems.append(f"only {colored} tree-coloured pixels in {shot}")
                        if step == "click":
                            code = (marks.get("popup") or "").removeprefix("tree ")
                            if not code:
                                problems.append("no popup after clicking a tree")
                            elif code not in popup:
                                problems.append(f"the popup does not show the tree code {code}: {popup!r}")
                            if token and MARKUP not in popup:
                                problems.append(f"the popup does not show the tree's markup as text: {popup!r}")
                        if injected != ["undefined", 0]:
                            problems.append(f"markup from the data became elements or ran: {injected}")
                        status = "ok" if not problems else "FAIL"
                        print(f"map e2e: {name}: {status} ({colored} tree-coloured pixels, marks {marks}) -> {shot}")
                        failures += [f"{name}: {p}" for p in problems]
                    console = browser.console_errors()
                    if console:
                        failures.append(f"{width}x{height} {mode}: console errors: {console}")
                finally:
                    browser.close()
    for failure in failures:
        print("map e2e: FAIL " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
