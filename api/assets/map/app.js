/* orchardmap: the green-tree map page. MapLibre GL JS over /map/style.json.
 *
 * Trees come from the vector tiles of /tiles/trees.json; when that answers 404
 * (a server without tiles), from /api/trees?bbox=... as a clustered GeoJSON
 * source instead. The style has no glyphs, so cluster counts are HTML labels.
 *
 * With #e2e in the URL the page tests itself once loaded (scripts/map-e2e.sh):
 * it zooms to a tree, clicks it like a user and records what happened in
 * data-e2e-* attributes of <body> (errors included), then sets the title to
 * "e2e:done"; #e2e=overview stops after the first view has rendered.
 */
(function () {
  'use strict';

  const HASH = new URLSearchParams(location.hash.slice(1));
  const E2E = HASH.has('e2e');
  // #notiles: use the GeoJSON fallback even where tiles are served (to test it).
  const NO_TILES = HASH.has('notiles');
  const HEALTHS = ['good', 'fair', 'poor', 'dead'];
  const EMPTY = { type: 'FeatureCollection', features: [] };
  const FALLBACK_PAGE = 5000;
  const FALLBACK_PAGES = 4;

  const $ = (id) => document.getElementById(id);
  const errors = [];

  function mark(key, value) {
    if (E2E) document.body.setAttribute('data-e2e-' + key, String(value));
  }
  function reportError(message) {
    console.error(message);
    if (!E2E) return;
    errors.push(String(message));
    document.body.setAttribute('data-e2e-errors', errors.join(' | '));
  }
  if (E2E) {
    window.addEventListener('error', (e) => reportError('error: ' + e.message));
    window.addEventListener('unhandledrejection', (e) =>
      reportError('unhandled rejection: ' + ((e.reason && e.reason.message) || e.reason)));
  }

  /* ---------- Language ---------- */

  const TEXT = {
    vi: {
      map: 'Bản đồ',
      title: 'Bản đồ cây xanh · orchardmap',
      search_placeholder: 'Mã cây, vườn, vùng trồng',
      near_me: 'Cây gần tôi',
      filters: 'Lọc',
      filters_title: 'Lọc và chú giải',
      color_by: 'Tô màu theo',
      health: 'Tình trạng',
      cultivar: 'Giống',
      about: 'Giới thiệu và API',
      good: 'Tốt',
      fair: 'Trung bình',
      poor: 'Yếu',
      dead: 'Chết',
      other: 'Khác',
      clusters: 'Cụm: % yếu + chết',
      tree: 'Cây',
      orchard: 'Vườn',
      planted_year: 'Năm trồng',
      height: 'Chiều cao',
      girth: 'Vòng thân',
      accuracy: 'Sai số GPS',
      updated: 'Cập nhật',
      tree_page: 'Trang của cây',
      loading_tree: 'Đang tải…',
      load_failed: 'Không tải được dữ liệu',
      no_results: 'Không tìm thấy',
      trees_count: '{0} cây',
      locating: 'Đang xác định vị trí…',
      geo_unavailable: 'Trình duyệt này không cho biết vị trí',
      geo_failed: 'Không lấy được vị trí: {0}',
      nearest: '{0} cây gần bạn nhất',
      you: 'Bạn đang ở đây',
      partial: 'Đang hiện {0} trên {1} cây trong vùng này; phóng to để xem hết',
      no_maplibre: 'Không tải được thư viện bản đồ (MapLibre GL JS)',
      other_lang: 'EN',
      other_lang_title: 'English',
    },
    en: {
      map: 'Map',
      title: 'Green-tree map · orchardmap',
      search_placeholder: 'Tree code, orchard, planting area',
      near_me: 'Trees near me',
      filters: 'Filters',
      filters_title: 'Filters and legend',
      color_by: 'Colour by',
      health: 'Health',
      cultivar: 'Cultivar',
      about: 'About and API',
      good: 'Good',
      fair: 'Fair',
      poor: 'Poor',
      dead: 'Dead',
      other: 'Other',
      clusters: 'Clusters: % poor + dead',
      tree: 'Tree',
      orchard: 'Orchard',
      planted_year: 'Planted',
      height: 'Height',
      girth: 'Girth',
      accuracy: 'GPS accuracy',
      updated: 'Updated',
      tree_page: 'Tree page',
      loading_tree: 'Loading…',
      load_failed: 'Could not load the data',
      no_results: 'Nothing found',
      trees_count: '{0} trees',
      locating: 'Finding your position…',
      geo_unavailable: 'This browser does not share its position',
      geo_failed: 'No position: {0}',
      nearest: 'The {0} trees nearest to you',
      you: 'You are here',
      partial: 'Showing {0} of {1} trees in this area; zoom in to see all',
      no_maplibre: 'The map library (MapLibre GL JS) did not load',
      other_lang: 'VI',
      other_lang_title: 'Tiếng Việt',
    },
  };

  function initialLang() {
    const asked = new URLSearchParams(location.search).get('lang');
    if (asked && TEXT[asked]) return asked;
    try {
      const stored = localStorage.getItem('orchardmap.lang');
      if (stored && TEXT[stored]) return stored;
    } catch (_) { /* storage blocked */ }
    return 'vi';
  }

  const state = {
    lang: initialLang(),
    colorBy: 'health',
    health: new Set(HEALTHS),
    cultivars: new Set(),
    meta: null,
    tiled: false,
    tileJsonUrl: null,
    map: null,
    popup: null,
    orchards: null,
    loading: Promise.resolve(),
    loaded: null,
  };

  function t(key, ...args) {
    const s = (TEXT[state.lang] && TEXT[state.lang][key]) || TEXT.vi[key] || key;
    return s.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)]));
  }
  const label = (value) => (TEXT.vi[value] ? t(value) : value);

  function applyLang() {
    document.documentElement.lang = state.lang;
    document.title = t('title');
    document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.querySelectorAll('[data-i18n-placeholder]').forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
    document.querySelectorAll('[data-i18n-title]').forEach((el) => {
      el.title = t(el.dataset.i18nTitle);
      el.setAttribute('aria-label', t(el.dataset.i18nTitle));
    });
    $('q').setAttribute('aria-label', t('search_placeholder'));
    $('map').setAttribute('aria-label', t('map'));
    const other = $('lang');
    other.textContent = t('other_lang');
    other.title = t('other_lang_title');
    other.lang = state.lang === 'vi' ? 'en' : 'vi';
    document.querySelectorAll('[data-value-label]').forEach((el) => { el.textContent = label(el.dataset.valueLabel); });
    renderLegend();
  }

  /* ---------- Helpers ---------- */

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: 'application/json' } });
    if (!response.ok) {
      const error = new Error(url + ': HTTP ' + response.status);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'style') node.style.cssText = v;
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  /* Folds case and Vietnamese diacritics, as the server does for `q`. */
  function fold(s) {
    return String(s || '').normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[đĐ]/g, 'd').toLowerCase();
  }

  let statusTimer = null;
  function showStatus(text, ms) {
    const box = $('status');
    clearTimeout(statusTimer);
    box.textContent = text;
    box.hidden = !text;
    if (text && ms) statusTimer = setTimeout(() => { box.hidden = true; }, ms);
  }

  function swatch(color) {
    return el('span', { class: 'swatch', style: 'background:' + color, 'aria-hidden': 'true' });
  }

  function healthColor(h) {
    const found = state.meta.legend.health.find((x) => x.value === h);
    return found ? found.color : '#9e9e9e';
  }

  function boundsOf(coords) {
    const b = new maplibregl.LngLatBounds();
    coords.forEach((c) => b.extend(c));
    return b;
  }

  /* ---------- Legend and filter panel ---------- */

  function renderLegend() {
    const box = $('legend');
    if (!state.meta) return;
    const items = state.meta.legend[state.colorBy];
    const list = el('ul', null, ...items.map((item) =>
      el('li', null, swatch(item.color), el('span', null, label(item.value)))));
    const stops = state.meta.legend.cluster;
    const ramp = el('span', {
      class: 'ramp',
      style: 'background:linear-gradient(to right,' + stops.map((s) => s.color).join(',') + ')',
      'aria-hidden': 'true',
    });
    const pct = (s) => Math.round(s.share * 100) + '%';
    box.replaceChildren(
      el('div', { class: 'title' }, t(state.colorBy)),
      list,
      el('div', { class: 'clusters' }, t('clusters'), ' ', pct(stops[0]), ramp, pct(stops[stops.length - 1]) + '+'),
    );
  }

  function buildPanel() {
    const healthBox = document.querySelector('#health-filter .checks');
    healthBox.replaceChildren(...HEALTHS.map((h) => el('label', null,
      el('input', { type: 'checkbox', name: 'health', value: h, checked: true }),
      swatch(healthColor(h)),
      el('span', { 'data-value-label': h }, label(h)))));
    const cultivarBox = document.querySelector('#cultivar-filter .checks');
    const colors = state.meta.legend.cultivar;
    cultivarBox.replaceChildren(...state.meta.cultivars.map((c) => {
      const color = (colors.find((x) => x.value === c) || {}).color || '#9e9e9e';
      return el('label', null,
        el('input', { type: 'checkbox', name: 'cultivar', value: c, checked: true }),
        swatch(color),
        el('span', null, c));
    }));
    state.cultivars = new Set(state.meta.cultivars);

    $('panel').addEventListener('change', (e) => {
      const input = e.target;
      if (input.name === 'color') {
        state.colorBy = input.value;
        state.map.setPaintProperty('trees', 'circle-color', state.meta.color_by[state.colorBy]);
        renderLegend();
        return;
      }
      const set = input.name === 'health' ? state.health : input.name === 'cultivar' ? state.cultivars : null;
      if (!set) return;
      if (input.checked) set.add(input.value); else set.delete(input.value);
      applyFilters();
    });
    $('panel-toggle').addEventListener('click', () => {
      const panel = $('panel');
      panel.hidden = !panel.hidden;
      $('panel-toggle').setAttribute('aria-expanded', String(!panel.hidden));
    });
  }

  /* The filter as query parameters (for tiles and /api/trees); empty when everything is shown. */
  function filterQuery() {
    const parts = [];
    if (state.health.size > 0 && state.health.size < HEALTHS.length) {
      parts.push('health=' + encodeURIComponent([...state.health].join(',')));
    }
    if (state.cultivars.size > 0 && state.cultivars.size < state.meta.cultivars.length) {
      parts.push('cultivar=' + encodeURIComponent([...state.cultivars].join(',')));
    }
    return parts.join('&');
  }

  function applyFilters() {
    const map = state.map;
    const nothing = state.health.size === 0 || state.cultivars.size === 0;
    for (const id of ['trees', 'clusters']) map.setLayoutProperty(id, 'visibility', nothing ? 'none' : 'visible');
    const filter = ['all', ['!', ['has', 'point_count']]];
    if (state.health.size < HEALTHS.length) filter.push(['in', ['get', 'health'], ['literal', [...state.health]]]);
    if (state.cultivars.size < state.meta.cultivars.length) {
      filter.push(['in', ['get', 'cultivar'], ['literal', [...state.cultivars]]]);
    }
    map.setFilter('trees', filter);
    const query = filterQuery();
    if (state.tiled) {
      // The TileJSON carries its query into the tile URLs: the server filters (clusters included).
      map.getSource('trees').setUrl(state.tileJsonUrl + (query ? '?' + query : ''));
    } else {
      state.loading = loadFallback(true);
    }
  }

  /* ---------- Fallback: trees as clustered GeoJSON from /api/trees ---------- */

  function useGeoJSON(style) {
    const clusterProperties = {};
    for (const h of HEALTHS) clusterProperties[h] = ['+', ['case', ['==', ['get', 'health'], h], 1, 0]];
    style.sources.trees = {
      type: 'geojson', data: EMPTY, cluster: true, clusterMaxZoom: 16, clusterRadius: 45, clusterProperties,
    };
    style.sources.orchards = { type: 'geojson', data: EMPTY };
    for (const layer of style.layers) {
      if (layer.source !== 'trees') continue;
      if (layer['source-layer'] === 'orchards') layer.source = 'orchards';
      delete layer['source-layer'];
    }
  }

  const contains = (outer, inner) =>
    outer[0] <= inner[0] && outer[1] <= inner[1] && outer[2] >= inner[2] && outer[3] >= inner[3];

  let fallbackSeq = 0;
  async function loadFallback(force) {
    const map = state.map;
    const b = map.getBounds();
    const view = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
    const query = filterQuery();
    const last = state.loaded;
    if (!force && last && last.query === query && (last.complete ? contains(last.bbox, view) : last.zoom === map.getZoom())) {
      return;
    }
    const w = view[2] - view[0];
    const h = view[3] - view[1];
    const box = [
      Math.max(-180, view[0] - w / 2), Math.max(-85, view[1] - h / 2),
      Math.min(180, view[2] + w / 2), Math.min(85, view[3] + h / 2),
    ];
    const seq = ++fallbackSeq;
    let url = '/api/trees?bbox=' + box.map((v) => v.toFixed(6)).join(',') + '&limit=' + FALLBACK_PAGE +
      (query ? '&' + query : '');
    const features = [];
    let matched = 0;
    for (let page = 0; url && page < FALLBACK_PAGES; page++) {
      const body = await getJSON(url);
      if (seq !== fallbackSeq) return;
      features.push(...body.features);
      matched = body.numberMatched || features.length;
      const next = (body.links || []).find((l) => l.rel === 'next');
      url = next ? next.href : null;
    }
    map.getSource('trees').setData({ type: 'FeatureCollection', features });
    state.loaded = { bbox: box, query, complete: !url, zoom: map.getZoom() };
    if (url) showStatus(t('partial', features.length, matched), 5000);
  }

  async function loadFallbackOrchards() {
    try {
      const body = await getJSON('/ogc/collections/orchards/items?limit=10000');
      state.map.getSource('orchards').setData({
        type: 'FeatureCollection', features: body.features.filter((f) => f.geometry),
      });
    } catch (err) {
      console.warn('orchard boundaries:', err);
    }
  }

  /* ---------- Cluster counts (HTML labels over the circles) ---------- */

  const labels = new Map();
  function abbreviate(n) {
    if (n >= 10000) return Math.round(n / 1000) + 'k';
    if (n >= 1000) return (Math.round(n / 100) / 10) + 'k';
    return String(n);
  }
  function updateClusterLabels() {
    const map = state.map;
    const seen = new Set();
    for (const f of map.queryRenderedFeatures({ layers: ['clusters'] })) {
      const [lng, lat] = f.geometry.coordinates;
      const count = Number(f.properties.point_count);
      const key = lng.toFixed(5) + ',' + lat.toFixed(5) + ',' + count;
      if (seen.has(key)) continue;
      seen.add(key);
      if (!labels.has(key)) {
        const text = f.properties.point_count_abbreviated || abbreviate(count);
        const node = el('div', { class: 'cluster-label' }, String(text));
        labels.set(key, new maplibregl.Marker({ element: node }).setLngLat([lng, lat]).addTo(map));
      }
      if (seen.size >= 500) break;
    }
    for (const [key, marker] of labels) {
      if (!seen.has(key)) {
        marker.remove();
        labels.delete(key);
      }
    }
    map.getContainer().classList.remove('labels-hidden');
  }

  /* ---------- Tree popup ---------- */

  let popupSeq = 0;
  function orchardName(id) {
    const o = state.orchards && state.orchards.find((x) => x.properties.id === id);
    return o ? o.properties.name : null;
  }

  function treeContent(tree) {
    const p = tree.properties;
    const rows = [];
    const row = (key, value) => {
      if (value !== null && value !== undefined && value !== '') rows.push(el('tr', null, el('th', null, t(key)), el('td', null, value)));
    };
    row('cultivar', p.cultivar);
    row('health', el('span', { class: 'chip' }, swatch(healthColor(p.health)), label(p.health)));
    row('planted_year', p.planted_year);
    const name = orchardName(p.orchard);
    row('orchard', name ? name + ' (' + p.orchard + ')' : p.orchard);
    if (p.height_m != null) row('height', p.height_m + ' m');
    if (p.girth_cm != null) row('girth', p.girth_cm + ' cm');
    if (p.accuracy_m != null) row('accuracy', '± ' + p.accuracy_m + ' m');
    if (p.updated_at) row('updated', String(p.updated_at).slice(0, 10));
    const qr = el('img', {
      class: 'qr', src: '/api/trees/' + encodeURIComponent(p.id) + '/qr.svg', alt: 'QR ' + p.code,
      width: 72, height: 72, loading: 'lazy',
    });
    qr.addEventListener('error', () => { qr.hidden = true; });
    return [
      el('h3', null, t('tree') + ' ', el('span', { class: 'code' }, p.code)),
      el('table', null, el('tbody', null, ...rows)),
      el('div', { class: 'row' },
        el('a', { href: '/api/trees/' + encodeURIComponent(p.code), target: '_blank', rel: 'noopener' }, t('tree_page') + ' →'),
        qr),
    ];
  }

  async function openTree(id, lngLat) {
    const map = state.map;
    const seq = ++popupSeq;
    const box = el('div', { class: 'tree-popup' }, t('loading_tree'));
    if (state.popup) state.popup.remove();
    state.popup = new maplibregl.Popup({ maxWidth: '300px', offset: 10, focusAfterOpen: false })
      .setLngLat(lngLat).setDOMContent(box).addTo(map);
    try {
      const tree = await getJSON('/api/trees/' + encodeURIComponent(id));
      if (seq !== popupSeq) return;
      box.replaceChildren(...treeContent(tree));
      box.setAttribute('data-tree-code', tree.properties.code);
      state.popup.setLngLat(tree.geometry.coordinates);
      mark('popup', 'tree ' + tree.properties.code);
    } catch (err) {
      if (seq !== popupSeq) return;
      box.textContent = t('load_failed');
      reportError('tree ' + id + ': ' + err.message);
    }
  }

  /* The tree (or else cluster) under a click, with a finger's tolerance. */
  function onMapClick(e) {
    const map = state.map;
    const pad = 10;
    const box = [[e.point.x - pad, e.point.y - pad], [e.point.x + pad, e.point.y + pad]];
    const near = (f) => {
      const p = map.project(f.geometry.coordinates);
      return (p.x - e.point.x) ** 2 + (p.y - e.point.y) ** 2;
    };
    const trees = map.queryRenderedFeatures(box, { layers: ['trees'] });
    if (trees.length) {
      trees.sort((a, b) => near(a) - near(b));
      const f = trees[0];
      openTree(f.id !== undefined ? f.id : f.properties.id, f.geometry.coordinates);
      return;
    }
    const clusters = map.queryRenderedFeatures(box, { layers: ['clusters'] });
    if (clusters.length) zoomIntoCluster(clusters[0]);
  }

  async function zoomIntoCluster(f) {
    const map = state.map;
    let zoom = map.getZoom() + 2;
    if (!state.tiled && f.properties.cluster_id !== undefined) {
      try {
        zoom = await map.getSource('trees').getClusterExpansionZoom(f.properties.cluster_id);
      } catch (_) { /* keep +2 */ }
    }
    map.easeTo({ center: f.geometry.coordinates, zoom: Math.min(zoom, 20) });
  }

  /* ---------- Search ---------- */

  async function loadOrchards() {
    if (!state.orchards) {
      const body = await getJSON('/api/orchards');
      state.orchards = body.features;
    }
    return state.orchards;
  }

  function matchOrchards(list, q) {
    const needle = fold(q);
    return list.filter((o) => {
      const p = o.properties;
      return [p.id, p.name, p.planting_area_code, p.commune].some((v) => fold(v).includes(needle));
    });
  }

  let searchSeq = 0;
  let searchItems = [];
  let selected = -1;

  function renderResults(items, heading) {
    const list = $('results');
    searchItems = items;
    selected = -1;
    if (!items) {
      list.hidden = true;
      return;
    }
    const rows = items.map((item, i) => {
      const li = el('li', { role: 'option', id: 'result-' + i }, el('div', null, item.title), el('div', { class: 'kind' }, item.detail));
      li.addEventListener('click', () => choose(item));
      return li;
    });
    if (!rows.length) rows.push(el('li', { class: 'empty' }, t('no_results')));
    if (heading) rows.unshift(el('li', { class: 'empty' }, heading));
    list.replaceChildren(...rows);
    list.hidden = false;
  }

  async function runSearch() {
    const q = $('q').value.trim();
    const seq = ++searchSeq;
    if (q.length < 2) {
      renderResults(null);
      return [];
    }
    const [trees, orchards] = await Promise.all([
      getJSON('/api/trees?limit=10&q=' + encodeURIComponent(q)).then((b) => b.features).catch(() => []),
      loadOrchards().then((all) => matchOrchards(all, q)).catch(() => []),
    ]);
    if (seq !== searchSeq) return null;
    const items = [
      ...orchards.slice(0, 5).map((o) => ({
        kind: 'orchard', orchard: o,
        title: t('orchard') + ' ' + o.properties.name,
        detail: [o.properties.id, o.properties.planting_area_code, t('trees_count', o.properties.tree_count)]
          .filter(Boolean).join(' · '),
      })),
      ...trees.map((f) => ({
        kind: 'tree', tree: f,
        title: t('tree') + ' ' + f.properties.code,
        detail: [f.properties.cultivar, label(f.properties.health), f.properties.orchard].join(' · '),
      })),
    ];
    renderResults(items);
    return items;
  }

  function choose(item) {
    const map = state.map;
    renderResults(null);
    if (item.kind === 'tree') {
      const coords = item.tree.geometry.coordinates;
      map.getSource('results').setData({ type: 'FeatureCollection', features: [item.tree] });
      map.flyTo({ center: coords, zoom: Math.max(map.getZoom(), 18) });
      openTree(item.tree.id, coords);
    } else if (item.kind === 'orchard') {
      flyToOrchard(item.orchard.properties.id);
    }
  }

  async function flyToOrchard(id) {
    const map = state.map;
    try {
      const o = await getJSON('/api/orchards/' + encodeURIComponent(id));
      let coords = o.geometry ? o.geometry.coordinates[0] : null;
      if (!coords) {
        const trees = await getJSON('/api/trees?limit=2000&orchard=' + encodeURIComponent(id));
        coords = trees.features.map((f) => f.geometry.coordinates);
      }
      if (coords.length) map.fitBounds(boundsOf(coords), { padding: 60, maxZoom: 18 });
    } catch (err) {
      showStatus(t('load_failed'), 4000);
    }
  }

  function setUpSearch() {
    const q = $('q');
    let timer = null;
    q.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(runSearch, 250);
    });
    q.addEventListener('keydown', (e) => {
      const n = searchItems ? searchItems.length : 0;
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        if (!n) return;
        e.preventDefault();
        selected = (selected + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
        document.querySelectorAll('#results li[role=option]').forEach((li, i) =>
          li.setAttribute('aria-selected', String(i === selected)));
      } else if (e.key === 'Escape') {
        renderResults(null);
      }
    });
    $('search').addEventListener('submit', async (e) => {
      e.preventDefault();
      clearTimeout(timer);
      if (selected >= 0 && searchItems[selected]) {
        choose(searchItems[selected]);
        return;
      }
      const items = await runSearch();
      if (items && items.length) choose(items[0]);
    });
    document.addEventListener('click', (e) => {
      if (!$('search').contains(e.target)) renderResults(null);
    });
  }

  /* ---------- Near me ---------- */

  function setUpNearMe() {
    const button = $('near');
    button.addEventListener('click', () => {
      if (!navigator.geolocation) {
        showStatus(t('geo_unavailable'), 4000);
        return;
      }
      button.classList.add('busy');
      showStatus(t('locating'));
      navigator.geolocation.getCurrentPosition(async (pos) => {
        button.classList.remove('busy');
        const { longitude: lon, latitude: lat } = pos.coords;
        try {
          const body = await getJSON('/api/trees/nearest?lon=' + lon.toFixed(7) + '&lat=' + lat.toFixed(7) + '&k=10');
          showNearest(lon, lat, body.features);
        } catch (err) {
          showStatus(t('load_failed'), 4000);
        }
      }, (err) => {
        button.classList.remove('busy');
        showStatus(t('geo_failed', err.message), 5000);
      }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 });
    });
  }

  function showNearest(lon, lat, trees) {
    const map = state.map;
    const me = { type: 'Feature', properties: { kind: 'me' }, geometry: { type: 'Point', coordinates: [lon, lat] } };
    map.getSource('results').setData({ type: 'FeatureCollection', features: [me, ...trees] });
    const coords = [[lon, lat], ...trees.map((f) => f.geometry.coordinates)];
    map.fitBounds(boundsOf(coords), { padding: 60, maxZoom: 19 });
    showStatus('', 0);
    renderResults(trees.map((f) => ({
      kind: 'tree', tree: f,
      title: t('tree') + ' ' + f.properties.code + ' · ' + Math.round(f.properties.distance_m) + ' m',
      detail: [f.properties.cultivar, label(f.properties.health), f.properties.orchard].join(' · '),
    })), t('nearest', trees.length));
  }

  /* ---------- Start ---------- */

  async function tilesAvailable(url) {
    try {
      const response = await fetch(url, { headers: { Accept: 'application/json' } });
      if (!response.ok) return false;
      const body = await response.json();
      return Array.isArray(body.tiles) && body.tiles.length > 0;
    } catch (_) {
      return false;
    }
  }

  async function main() {
    if (!window.maplibregl) {
      showStatus(t('no_maplibre'));
      reportError('maplibre-gl did not load');
      return;
    }
    const style = await getJSON('/map/style.json');
    state.meta = style.metadata.orchardmap;
    state.tileJsonUrl = style.sources.trees.url;
    state.tiled = !NO_TILES && (await tilesAvailable(state.tileJsonUrl));
    if (!state.tiled) {
      // No tile endpoint on this server: trees from the search API, clustered in the browser.
      console.info('orchardmap: /tiles/trees.json unavailable, loading trees from /api/trees');
      useGeoJSON(style);
    }
    buildPanel();
    applyLang();
    setUpSearch();
    setUpNearMe();
    $('lang').addEventListener('click', () => {
      state.lang = state.lang === 'vi' ? 'en' : 'vi';
      try { localStorage.setItem('orchardmap.lang', state.lang); } catch (_) { /* storage blocked */ }
      applyLang();
    });

    const b = state.meta.bounds;
    const map = new maplibregl.Map({
      container: 'map',
      style,
      bounds: b ? [[b[0], b[1]], [b[2], b[3]]] : undefined,
      fitBoundsOptions: { padding: { top: 70, bottom: 60, left: 30, right: 30 } },
      maxZoom: 21,
      attributionControl: { compact: true },
      dragRotate: false,
      pitchWithRotate: false,
      canvasContextAttributes: { preserveDrawingBuffer: E2E },
    });
    state.map = map;
    if (E2E) window.orchardmapState = state;
    map.touchZoomRotate.disableRotation();
    map.keyboard.disableRotation();
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
    map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
    map.on('error', (e) => reportError('map: ' + ((e.error && e.error.message) || e.type)));
    map.on('click', onMapClick);
    for (const layer of ['trees', 'clusters']) {
      map.on('mouseenter', layer, () => { map.getCanvas().style.cursor = 'pointer'; });
      map.on('mouseleave', layer, () => { map.getCanvas().style.cursor = ''; });
    }
    map.on('zoomstart', () => map.getContainer().classList.add('labels-hidden'));
    map.on('idle', updateClusterLabels);
    loadOrchards().catch(() => null);

    await new Promise((resolve) => map.once('load', resolve));
    if (!state.tiled) {
      map.on('moveend', () => { state.loading = loadFallback(false).catch((err) => reportError(err.message)); });
      state.loading = loadFallback(true);
      loadFallbackOrchards();
      await state.loading;
    }
    mark('loaded', state.tiled ? 'tiles' : 'geojson');
    await openFromHash();
    if (E2E) await selfTest();
  }

  /* Links from the tree and lot pages: #tree=CODE opens the tree, #orchard=ID shows the orchard. */
  async function openFromHash() {
    const code = HASH.get('tree');
    const orchard = HASH.get('orchard');
    try {
      if (code) {
        const tree = await getJSON('/api/trees/' + encodeURIComponent(code));
        state.map.jumpTo({ center: tree.geometry.coordinates, zoom: 18 });
        await openTree(tree.id, tree.geometry.coordinates);
      } else if (orchard) {
        await flyToOrchard(orchard);
      }
    } catch (err) {
      showStatus(t('load_failed'), 4000);
    }
  }

  /* ---------- #e2e: the page tests itself ---------- */

  const idle = () => new Promise((resolve) => {
    if (state.map.loaded() && !state.map.isMoving()) {
      // Already idle: wait one frame for a render that may be pending.
      state.map.once('idle', resolve);
      state.map.triggerRepaint();
    } else {
      state.map.once('idle', resolve);
    }
  });
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function selfTest() {
    const map = state.map;
    try {
      await state.loading;
      await idle();
      mark('overview', map.queryRenderedFeatures({ layers: ['clusters', 'trees'] }).length);
      mark('labels', document.querySelectorAll('.cluster-label').length);
      if (HASH.get('e2e') === 'overview') {
        mark('done', errors.length ? 'errors' : 'ok');
        document.title = 'e2e:done';
        return;
      }
      const first = await getJSON('/api/trees?limit=1&sort=id');
      const target = first.features[0];
      map.jumpTo({ center: target.geometry.coordinates, zoom: 18.5 });
      let rendered = [];
      for (let i = 0; i < 40 && !rendered.length; i++) {
        await state.loading;
        await idle();
        rendered = map.queryRenderedFeatures({ layers: ['trees'] });
        if (!rendered.length) await sleep(100);
      }
      mark('trees', rendered.length);
      if (!rendered.length) throw new Error('no tree rendered at zoom 18.5');
      const center = map.project(target.geometry.coordinates);
      const dist = (f) => {
        const p = map.project(f.geometry.coordinates);
        return (p.x - center.x) ** 2 + (p.y - center.y) ** 2;
      };
      rendered.sort((a, b) => dist(a) - dist(b));
      const pick = rendered[0];
      const point = map.project(pick.geometry.coordinates);
      const rect = map.getCanvas().getBoundingClientRect();
      const at = { bubbles: true, cancelable: true, clientX: rect.left + point.x, clientY: rect.top + point.y, button: 0 };
      mark('clicked', pick.properties.code || pick.id);
      const canvas = map.getCanvas();
      canvas.dispatchEvent(new MouseEvent('mousedown', at));
      canvas.dispatchEvent(new MouseEvent('mouseup', at));
      canvas.dispatchEvent(new MouseEvent('click', at));
      for (let i = 0; i < 50 && !document.body.hasAttribute('data-e2e-popup'); i++) await sleep(100);
      if (!document.body.hasAttribute('data-e2e-popup')) throw new Error('clicking a tree opened no popup');
      await idle();
    } catch (err) {
      reportError('self-test: ' + err.message);
    }
    mark('done', errors.length ? 'errors' : 'ok');
    document.title = 'e2e:done';
  }

  main().catch((err) => {
    reportError('start: ' + err.message);
    showStatus(t('load_failed'));
    mark('done', 'errors');
  });
})();
