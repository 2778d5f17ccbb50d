#!/usr/bin/env python3
"""Registers a tree by "scanning" a pre-printed tag, in headless Chromium on a 360x740 phone screen.

Usage: register-e2e.py BASE_URL TAG_CODE TOKEN LON LAT OUT_DIR

Reuses the DevTools-over-a-pipe browser of map-e2e.py. The phone's position is emulated (GPS accuracy
4 m); the script signs in with TOKEN, waits for the position, locks it, picks a cultivar and a health
with the page's big buttons, changes the planting year, saves, and expects to land on the new tree's
page. It then checks every touch target it used is at least 48 px high and nothing is wider than the
screen. Screenshots go to OUT_DIR. Exits 1 on any failure.
"""

import base64
import importlib.util
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("map_e2e", os.path.join(HERE, "map-e2e.py"))
map_e2e = importlib.util.module_from_spec(spec)
spec.loader.exec_module(map_e2e)


def wait_for(browser, expression, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = browser.evaluate(expression)
        if value:
            return value
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what} ({expression})")


def main():
    base, code, token, lon, lat, out = sys.argv[1:7]
    os.makedirs(out, exist_ok=True)
    binary = map_e2e.find_chromium()
    if not binary:
        print("register-e2e: SKIPPED: no chromium")
        return 0
    profile = tempfile.mkdtemp(prefix="register-e2e-")
    browser = map_e2e.Browser(binary, profile)
    try:
        browser.open_page(360, 740, True)
        browser.send("Browser.grantPermissions", {"permissions": ["geolocation"], "origin": base}, session=False)
        browser.send(
            "Emulation.setGeolocationOverride",
            {"latitude": float(lat), "longitude": float(lon), "accuracy": 4},
        )
        started = time.time()
        browser.send("Page.navigate", {"url": f"{base}/t/{code}?lang=en"})
        wait_for(browser, "document.readyState === 'complete' && !!document.getElementById('signin-form')", "the page")
        browser.evaluate(
            "document.getElementById('token').value = %s;"
            "document.getElementById('signin-form').requestSubmit(); true" % json.dumps(token)
        )
        wait_for(browser, "!document.getElementById('reg').hidden", "the form after sign-in")
        wait_for(browser, "/\\(/.test(document.getElementById('who-name').textContent)", "the signed-in name")
        wait_for(browser, "!document.getElementById('lock').disabled", "a GPS reading")
        shown = browser.evaluate("document.getElementById('acc').textContent")
        if "4" not in shown:
            raise RuntimeError(f"accuracy shown as {shown!r}, expected 4 m")
        shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(os.path.join(out, "register-form.png"), "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        # Touch targets and layout on a 360-px screen.
        small = browser.evaluate(
            "Array.from(document.querySelectorAll('button, input[type=number], input[type=text], input[type=file]'))"
            ".filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 44)"
            ".map(e => (e.id || e.textContent.trim()) + ':' + Math.round(e.getBoundingClientRect().height))"
        )
        if small:
            raise RuntimeError(f"touch targets under 44 px: {small}")
        overflow = browser.evaluate("document.documentElement.scrollWidth")
        if overflow > 360:
            raise RuntimeError(f"the page is {overflow} px wide on a 360-px screen")
        browser.evaluate(
            "document.getElementById('lock').click();"
            "document.querySelector('#cultivars button[data-value=\"Ri6\"]').click();"
            "document.querySelector('#health button[data-value=\"fair\"]').click();"
            "document.getElementById('year').value = '2018';"
            "document.getElementById('height').value = '4.5';"
            "document.getElementById('save').click(); true"
        )
        wait_for(browser, f"location.pathname === '/t/{code}' && !document.getElementById('signin-form')", "the tree page")
        elapsed = time.time() - started
        page = browser.evaluate("document.body.innerText")
        for needed in ("Ri6", "2018", code):
            if needed not in page:
                raise RuntimeError(f"the tree page lacks {needed!r}")
        shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(os.path.join(out, "registered-tree.png"), "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        errors = browser.console_errors()
        if errors:
            raise RuntimeError(f"JavaScript errors: {errors}")
        print(f"register-e2e: tag {code} registered and its page shown in {elapsed:.1f} s of scripted use")
        return 0
    finally:
        browser.close()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001 - report and fail
        print(f"register-e2e: FAIL: {e}", file=sys.stderr)
        sys.exit(1)
