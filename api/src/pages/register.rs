//! The registration page: a volunteer who scanned a tag not yet on a tree
//! registers the tree in under a minute. The one page with a script (inline,
//! no library): sign-in with an access code kept in `localStorage`, live GPS
//! with its accuracy, big buttons for cultivar and health, then a JSON POST
//! and an optional photo upload.
//!
//! Everything the script needs from the server (endpoint, cultivars, the
//! texts in the page's language) is in a JSON island made safe for a script
//! context by [`script_json`]; the script itself is a constant.

use serde_json::json;

use super::i18n::{self, Lang, Msg, t};
use super::{Head, RegisterPage, document, escape, safe_href};

/// Who is signed in (`GET`, with the bearer token).
const ME_ENDPOINT: &str = "/api/me";
/// Where a photo of the new tree goes (`POST`, raw image bytes); `{id}` is the tree id.
const PHOTO_ENDPOINT: &str = "/api/trees/{id}/photos";
/// Earliest planting year accepted.
const EARLIEST_YEAR: i32 = 1950;

/// JSON for a `<script>` element: `<`, `>` and `&` (so that no `</script>`
/// or `<!--` can appear) and U+2028/U+2029 (line terminators in old
/// JavaScript) as `\u` escapes, which JSON reads back unchanged.
pub(crate) fn script_json(value: &serde_json::Value) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string());
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(c),
        }
    }
    out
}

/// `s` percent-encoded for a URL path segment.
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The texts of the script, by the names it uses.
fn script_messages(lang: Lang) -> serde_json::Value {
    let pairs: [(&str, Msg); 30] = [
        ("checking", Msg::Checking),
        ("signedInAs", Msg::SignedInAs),
        ("tokenInvalid", Msg::TokenInvalid),
        ("notAllowed", Msg::NotAllowed),
        ("waitingForGps", Msg::WaitingForGps),
        ("geoDenied", Msg::GeoDenied),
        ("geoUnavailable", Msg::GeoUnavailable),
        ("gps_good", Msg::GpsGood),
        ("gps_fair", Msg::GpsFair),
        ("gps_poor", Msg::GpsPoor),
        ("usePosition", Msg::UsePosition),
        ("positionLocked", Msg::PositionLocked),
        ("needPosition", Msg::NeedPosition),
        ("otherCultivar", Msg::OtherCultivar),
        ("needCultivar", Msg::NeedCultivar),
        ("needHealth", Msg::NeedHealth),
        ("yearRange", Msg::YearRange),
        ("heightRange", Msg::HeightRange),
        ("saving", Msg::Saving),
        ("uploadingPhoto", Msg::UploadingPhoto),
        ("saved", Msg::Saved),
        ("photoFailed", Msg::PhotoFailed),
        ("openTreePage", Msg::OpenTreePage),
        ("networkError", Msg::NetworkError),
        ("serverError", Msg::ServerError),
        ("fixMarked", Msg::FixMarked),
        ("latitude", Msg::Latitude),
        ("longitude", Msg::Longitude),
        ("accuracy", Msg::Accuracy),
        ("unknown", Msg::Unknown),
    ];
    serde_json::Value::Object(pairs.iter().map(|&(k, m)| (k.to_string(), json!(t(lang, m)))).collect())
}

/// The registration page in `lang`.
pub fn register_page(p: &RegisterPage, lang: Lang) -> String {
    let title = i18n::fill(lang, Msg::RegisterTitle, &[("code", &p.code)]);
    let this_year = p.this_year.max(EARLIEST_YEAR);
    let default_year = (this_year - 5).max(EARLIEST_YEAR);
    let e = |m: Msg| escape(t(lang, m));
    let mut body = format!("<h1>{}</h1>", escape(&title));
    body.push_str(&format!("<noscript><p class=\"err\">{}</p></noscript>", e(Msg::NeedsJavaScript)));
    if p.assigned {
        body.push_str(&format!(
            "<section class=\"flags\" role=\"note\"><strong>{}</strong> <a href=\"/t/{}\">{}</a></section>",
            e(Msg::AlreadyAssigned),
            escape(&path_segment(&p.code)),
            e(Msg::SeeThatTree)
        ));
    }
    body.push_str(&format!("<p>{}</p>", e(Msg::RegisterIntro)));

    // Sign-in, shown by the script when no access code is stored.
    body.push_str(&format!(
        "<section id=\"signin\" hidden><form id=\"signin-form\">\
         <label for=\"token\">{}</label>\
         <input id=\"token\" type=\"password\" autocomplete=\"current-password\" autocapitalize=\"off\" spellcheck=\"false\">\
         <p class=\"hint\">{}</p><p class=\"err\" id=\"signin-err\" role=\"alert\" hidden></p>\
         <button type=\"submit\" class=\"wide\">{}</button></form></section>\
         <section id=\"who\" hidden><p><span id=\"who-name\"></span> \
         <button type=\"button\" id=\"signout\" class=\"secondary\">{}</button></p></section>",
        e(Msg::AccessCode),
        e(Msg::AccessCodeHint),
        e(Msg::SignIn),
        e(Msg::SignOut),
    ));

    body.push_str("<form id=\"reg\" hidden novalidate>");
    if p.assigned {
        body.push_str(&format!(
            "<label class=\"check\"><input type=\"checkbox\" id=\"reassign\"> {}</label>",
            e(Msg::Reassign)
        ));
    }
    // Position.
    body.push_str(&format!(
        "<fieldset><legend>{}</legend>\
         <p class=\"gps\" aria-live=\"polite\">{}: <b id=\"lat\">–</b><br>{}: <b id=\"lon\">–</b><br>\
         {}: <b id=\"acc\">–</b> <span id=\"acc-word\"></span></p>\
         <p id=\"geo-status\" class=\"hint\">{}</p>\
         <button type=\"button\" id=\"lock\" class=\"wide\" aria-pressed=\"false\" disabled>{}</button>\
         <p class=\"err\" id=\"err-position\" hidden></p></fieldset>",
        e(Msg::Position),
        e(Msg::Latitude),
        e(Msg::Longitude),
        e(Msg::Accuracy),
        e(Msg::WaitingForGps),
        e(Msg::UsePosition),
    ));
    // Cultivar: the buttons are made by the script from the JSON island.
    body.push_str(&format!(
        "<fieldset><legend>{}</legend><div class=\"choices\" id=\"cultivars\" role=\"group\"></div>\
         <div id=\"other-wrap\" hidden><label for=\"other\">{}</label>\
         <input id=\"other\" type=\"text\" maxlength=\"60\" autocomplete=\"off\"></div>\
         <p class=\"err\" id=\"err-cultivar\" hidden></p></fieldset>",
        e(Msg::Cultivar),
        e(Msg::OtherCultivarName),
    ));
    // Planting year.
    body.push_str(&format!(
        "<label for=\"year\">{}</label>\
         <input id=\"year\" type=\"number\" inputmode=\"numeric\" step=\"1\" min=\"{EARLIEST_YEAR}\" max=\"{this_year}\" value=\"{default_year}\">\
         <p class=\"err\" id=\"err-planted_year\" hidden></p>",
        e(Msg::PlantedYear),
    ));
    // Health.
    let health_buttons: String = geo_core::Health::ALL
        .iter()
        .map(|&h| {
            format!(
                "<button type=\"button\" class=\"choice\" data-value=\"{}\" aria-pressed=\"false\">{}</button>",
                h.as_str(),
                super::tree::health_html(lang, h)
            )
        })
        .collect();
    body.push_str(&format!(
        "<fieldset><legend>{}</legend><div class=\"choices\" id=\"health\" role=\"group\">{health_buttons}</div>\
         <p class=\"err\" id=\"err-health\" hidden></p></fieldset>",
        e(Msg::Health),
    ));
    // Height and photo, optional.
    body.push_str(&format!(
        "<label for=\"height\">{}</label>\
         <input id=\"height\" type=\"number\" inputmode=\"decimal\" step=\"0.1\" min=\"0\" max=\"60\">\
         <p class=\"err\" id=\"err-height_m\" hidden></p>\
         <label for=\"photo\">{}</label>\
         <input id=\"photo\" type=\"file\" accept=\"image/*\" capture=\"environment\">\
         <p class=\"err\" id=\"err-photo\" hidden></p>\
         <p class=\"err\" id=\"err-general\" role=\"alert\" hidden></p>\
         <p id=\"status\" aria-live=\"polite\"></p>\
         <p><a id=\"after\" class=\"button secondary wide\" href=\"#\" hidden>{}</a></p>\
         <button type=\"submit\" id=\"save\" class=\"wide\">{}</button></form>",
        e(Msg::HeightOptional),
        e(Msg::PhotoOptional),
        e(Msg::OpenTreePage),
        e(Msg::Save),
    ));

    let config = json!({
        "code": p.code,
        "endpoint": safe_href(&p.register_endpoint),
        "me": ME_ENDPOINT,
        "photos": PHOTO_ENDPOINT,
        "thisYear": this_year,
        "earliestYear": EARLIEST_YEAR,
        "assigned": p.assigned,
        "cultivars": p.cultivars,
        "m": script_messages(lang),
    });
    let scripts = format!(
        "<script type=\"application/json\" id=\"om-config\">{}</script>\n<script>{}</script>\n",
        script_json(&config),
        SCRIPT
    );
    document(lang, &title, &p.switch, Head { canonical: None, noindex: true }, &body, &scripts)
}

/// The page's script. Plain ES5 plus `fetch` and `closest`, for old Android phones.
const SCRIPT: &str = r#"
(function () {
  'use strict';
  var cfg = JSON.parse(document.getElementById('om-config').textContent);
  var m = cfg.m;
  var KEY = 'orchardmap.token';
  var memoryToken = null;
  function $(id) { return document.getElementById(id); }
  function getToken() {
    try { return window.localStorage.getItem(KEY) || memoryToken; } catch (e) { return memoryToken; }
  }
  function setToken(v) {
    memoryToken = v;
    try {
      if (v === null) { window.localStorage.removeItem(KEY); } else { window.localStorage.setItem(KEY, v); }
    } catch (e) { /* private mode: the code lives as long as the page */ }
  }
  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (all, k) {
      return Object.prototype.hasOwnProperty.call(values, k) ? String(values[k]) : all;
    });
  }
  function show(el, on) { if (el) { el.hidden = !on; } }
  function setErr(slot, text) {
    var el = $('err-' + slot) || $('err-general');
    el.textContent = text || '';
    show(el, !!text);
  }
  function addErr(slot, text) {
    var el = $('err-' + slot) || $('err-general');
    el.textContent = el.textContent ? el.textContent + '\n' + text : text;
    show(el, true);
  }
  function clearErrs() {
    var els = document.querySelectorAll('.err[id^="err-"]');
    for (var i = 0; i < els.length; i++) { els[i].textContent = ''; els[i].hidden = true; }
  }
  function status(text) { $('status').textContent = text || ''; }

  /* Sign-in. */
  function showSignIn(message) {
    show($('signin'), true);
    show($('who'), false);
    $('signin-err').textContent = message || '';
    show($('signin-err'), !!message);
  }
  function signedIn(token) {
    show($('signin'), false);
    show($('who'), true);
    show($('reg'), true);
    $('who-name').textContent = m.checking;
    fetch(cfg.me, { headers: { 'Authorization': 'Bearer ' + token } }).then(function (r) {
      if (r.status === 401) {
        setToken(null);
        show($('reg'), false);
        showSignIn(m.tokenInvalid);
        return null;
      }
      return r.ok ? r.json() : {};
    }).then(function (me) {
      if (me === null) { return; }
      var name = me && me.name ? String(me.name) + (me.role ? ' (' + me.role + ')' : '') : '…';
      $('who-name').textContent = fill(m.signedInAs, { name: name });
    }, function () {
      $('who-name').textContent = fill(m.signedInAs, { name: '…' });
    });
  }
  $('signin-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var token = $('token').value.trim();
    if (!token) { return; }
    setToken(token);
    $('token').value = '';
    signedIn(token);
  });
  $('signout').addEventListener('click', function () {
    setToken(null);
    show($('reg'), false);
    showSignIn('');
  });

  /* Position. */
  var reading = null;
  var locked = null;
  function accuracyClass(a) { return a <= 5 ? 'good' : (a <= 15 ? 'fair' : 'poor'); }
  function showPosition(p) {
    $('lat').textContent = p.lat.toFixed(6);
    $('lon').textContent = p.lon.toFixed(6);
    var c = accuracyClass(p.acc);
    $('acc').textContent = (Math.round(p.acc * 10) / 10) + ' m';
    $('acc').className = 'acc-' + c;
    $('acc-word').className = 'acc-' + c;
    $('acc-word').textContent = m['gps_' + c];
  }
  function lockTo(p) {
    locked = p;
    var b = $('lock');
    b.textContent = p ? m.positionLocked : m.usePosition;
    b.setAttribute('aria-pressed', p ? 'true' : 'false');
    b.className = p ? 'wide secondary' : 'wide';
    if (p) { showPosition(p); setErr('position', ''); } else if (reading) { showPosition(reading); }
  }
  if (navigator.geolocation && navigator.geolocation.watchPosition) {
    navigator.geolocation.watchPosition(function (pos) {
      reading = { lon: pos.coords.longitude, lat: pos.coords.latitude, acc: pos.coords.accuracy };
      $('geo-status').textContent = '';
      $('lock').disabled = false;
      if (!locked) { showPosition(reading); }
    }, function (err) {
      if (err.code === 1) { $('geo-status').textContent = m.geoDenied; }
      else if (err.code === 3 && !reading) { $('geo-status').textContent = m.waitingForGps; }
      else if (!reading) { $('geo-status').textContent = m.geoUnavailable; }
    }, { enableHighAccuracy: true, maximumAge: 0, timeout: 30000 });
  } else {
    $('geo-status').textContent = m.geoUnavailable;
  }
  $('lock').addEventListener('click', function () {
    if (locked) { lockTo(null); } else if (reading) { lockTo(reading); }
  });

  /* Choices: cultivar and health. */
  function choiceGroup(container, onPick) {
    container.addEventListener('click', function (e) {
      var b = e.target.closest ? e.target.closest('button') : null;
      if (!b || !container.contains(b)) { return; }
      var all = container.querySelectorAll('button');
      for (var i = 0; i < all.length; i++) { all[i].setAttribute('aria-pressed', all[i] === b ? 'true' : 'false'); }
      onPick(b);
    });
  }
  var cultivar = null;
  var other = false;
  var health = null;
  var box = $('cultivars');
  function addChoice(text, value) {
    var b = document.createElement('button');
    b.type = 'button';
    b.className = 'choice';
    b.setAttribute('aria-pressed', 'false');
    if (value !== null) { b.setAttribute('data-value', value); }
    b.textContent = text;
    box.appendChild(b);
  }
  for (var i = 0; i < cfg.cultivars.length; i++) { addChoice(cfg.cultivars[i], cfg.cultivars[i]); }
  addChoice(m.otherCultivar, null);
  choiceGroup(box, function (b) {
    other = !b.hasAttribute('data-value');
    cultivar = other ? null : b.getAttribute('data-value');
    show($('other-wrap'), other);
    if (other) { $('other').focus(); }
    setErr('cultivar', '');
  });
  choiceGroup($('health'), function (b) { health = b.getAttribute('data-value'); setErr('health', ''); });

  /* Saving. */
  var busy = false;
  var saved = false;
  function setBusy(on, text) { busy = on; $('save').disabled = on || saved; status(text); }
  var slots = {
    lon: 'position', lat: 'position', accuracy_m: 'position', location: 'position', orchard: 'position',
    cultivar: 'cultivar', planted_year: 'planted_year', health: 'health', height_m: 'height_m'
  };
  function errorText(data, raw) {
    var e = data && data.error;
    if (typeof e === 'string') { return e; }
    if (e && typeof e.message === 'string') { return e.message; }
    if (data && typeof data.message === 'string') { return data.message; }
    return raw && raw.length < 200 && raw.indexOf('<') < 0 ? raw : '';
  }
  function serverProblem(res) {
    if (res.status === 401) {
      setToken(null);
      setErr('general', m.tokenInvalid);
      showSignIn(m.tokenInvalid);
      return;
    }
    if (res.status === 403) { setErr('general', m.notAllowed); return; }
    var d = res.data || {};
    var problems = d.problems || (d.error && d.error.problems) || [];
    for (var i = 0; i < problems.length; i++) {
      var p = problems[i] || {};
      var slot = slots[p.field] || 'general';
      var text = (slot === 'general' && p.field ? p.field + ': ' : '') +
        (p.value ? '\u201c' + p.value + '\u201d: ' : '') + (p.reason || '');
      addErr(slot, text);
    }
    addErr('general', fill(m.serverError, { status: res.status, error: errorText(res.data, res.text) }));
  }
  function readJson(r) {
    return r.text().then(function (text) {
      var data = null;
      try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
      return { status: r.status, ok: r.ok, data: data, text: text };
    });
  }
  function finish(page) {
    status(m.saved);
    if (page) { window.location.assign(page); }
  }
  function afterSave(data, token) {
    saved = true;
    var page = data && typeof data.page === 'string' && /^\/(?![\/\\])/.test(data.page) ? data.page : null;
    if (page) { $('after').href = page; }
    var id = data && data.tree ? data.tree.id : null;
    var file = $('photo').files && $('photo').files[0];
    if (!file || id === null || id === undefined) { setBusy(false, ''); finish(page); return; }
    status(m.uploadingPhoto);
    fetch(cfg.photos.replace('{id}', encodeURIComponent(String(id))), {
      method: 'POST',
      headers: { 'Authorization': 'Bearer ' + token, 'Content-Type': file.type || 'application/octet-stream' },
      body: file
    }).then(readJson).then(function (res) {
      setBusy(false, '');
      if (res.ok) { finish(page); return; }
      setErr('photo', fill(m.photoFailed, { error: errorText(res.data, res.text) || ('HTTP ' + res.status) }));
      show($('after'), !!page);
    }, function () {
      setBusy(false, '');
      setErr('photo', fill(m.photoFailed, { error: m.networkError }));
      show($('after'), !!page);
    });
  }
  $('reg').addEventListener('submit', function (e) {
    e.preventDefault();
    if (busy || saved) { return; }
    clearErrs();
    var token = getToken();
    if (!token) { showSignIn(''); return; }
    var bad = false;
    var pos = locked || reading;
    if (!pos) { setErr('position', m.needPosition); bad = true; }
    var name = other ? $('other').value.trim() : cultivar;
    if (!name) { setErr('cultivar', m.needCultivar); bad = true; }
    var yearText = $('year').value.trim();
    var year = yearText === '' ? null : Number(yearText);
    if ($('year').validity.badInput || (year !== null &&
        !(Math.floor(year) === year && year >= cfg.earliestYear && year <= cfg.thisYear))) {
      setErr('planted_year', fill(m.yearRange, { year: cfg.thisYear }));
      bad = true;
    }
    if (!health) { setErr('health', m.needHealth); bad = true; }
    var heightText = $('height').value.trim();
    var height = heightText === '' ? null : Number(heightText);
    if ($('height').validity.badInput || (height !== null && !(isFinite(height) && height >= 0 && height <= 60))) {
      setErr('height_m', m.heightRange);
      bad = true;
    }
    if (bad) { setErr('general', m.fixMarked); return; }
    if (!locked) { lockTo(pos); }
    var body = {
      lon: pos.lon, lat: pos.lat, accuracy_m: Math.round(pos.acc * 10) / 10,
      cultivar: name, planted_year: year, health: health, height_m: height
    };
    var reassign = $('reassign');
    if (cfg.assigned && reassign && reassign.checked) { body.reassign = true; }
    setBusy(true, m.saving);
    fetch(cfg.endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token },
      body: JSON.stringify(body)
    }).then(readJson).then(function (res) {
      if (res.ok) { afterSave(res.data, token); return; }
      setBusy(false, '');
      serverProblem(res);
    }, function () {
      setBusy(false, '');
      setErr('general', m.networkError);
    });
  });

  var stored = getToken();
  if (stored) { signedIn(stored); } else { showSignIn(''); }
})();
"#;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_script_cannot_end_its_element_early() {
        assert!(!SCRIPT.contains("</"), "`</` in the script");
        assert!(!SCRIPT.contains("<!--"));
        assert!(!SCRIPT.contains("http://") && !SCRIPT.contains("https://"), "external request");
    }

    #[test]
    fn the_script_knows_every_message_it_uses() {
        let messages = script_messages(Lang::En);
        let mut rest = SCRIPT;
        while let Some(i) = rest.find("m.") {
            let name: String = rest[i + 2..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let before = rest[..i].chars().last();
            // `m.x` only, not `elem.x` or `item.x`.
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') && !name.is_empty() {
                assert!(messages.get(&name).is_some(), "the script uses m.{name}, which is not sent");
            }
            rest = &rest[i + 2..];
        }
        for c in ["good", "fair", "poor"] {
            assert!(messages.get(format!("gps_{c}")).is_some());
        }
    }

    #[test]
    fn path_segments() {
        assert_eq!(path_segment("K7DW3QX"), "K7DW3QX");
        assert_eq!(path_segment("a/b c<"), "a%2Fb%20c%3C");
    }
}
