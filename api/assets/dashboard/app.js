// murmur's dashboard: a client of the public API. Charts come drawn from the server (`format=svg`); every
// element that stands for comments carries `data-comments`, the /v1/trends/examples query that lists them,
// and a click on it opens them in the side panel. The page's state lives in the URL fragment, so a view
// can be bookmarked and shared.
'use strict';

const RANGE_DAYS = { '24h': 1, '7d': 7, '30d': 30, '90d': 90 };
const MAX_BRANDS = 8;
const STATUS_EVERY_MS = 5000;
const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

const EMOTIONS = ['anger', 'disgust', 'fear', 'joy', 'sadness', 'surprise'];
const LANGUAGE_NAMES = new Intl.DisplayNames(['en'], { type: 'language' });

/** A language code as a reader names it: "French (fr)"; `und` is the detector's and producer's silence. */
function languageName(code) {
  if (code === 'und') return 'undetermined';
  let name = code;
  try { name = LANGUAGE_NAMES.of(code) ?? code; } catch { /* not a code Intl knows */ }
  return name === code ? code : `${name} (${code})`;
}

const state = { range: '7d', from: '', to: '', bucket: '', source: '', brands: [], focus: 'all', view: 'sentiment', comments: '', title: '' };
let indexed = null;
let searchCursor = null;
let refreshing = null;
let refreshAgain = false;

const $ = (id) => document.getElementById(id);

/** An element with attributes and children; strings become text nodes, never HTML. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child);
  }
  return node;
}

class ApiError extends Error {}

// The API key, where the server needs one for reads: given once in the address as `#key=…`, kept for this
// tab only (sessionStorage) and taken out of the address, so that bookmarks and shared links never carry it.
const KEY_STORE = 'murmur-api-key';

function takeKey(params) {
  const key = params.get('key');
  if (!key) return;
  sessionStorage.setItem(KEY_STORE, key);
  params.delete('key');
  history.replaceState(null, '', `#${params}`);
}

/** GETs an API path; JSON (or text for SVG) on success, an ApiError carrying the API's message otherwise. */
async function api(path, params = {}, as = 'json') {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(name, value);
  }
  const url = query.toString() ? `${path}?${query}` : path;
  let response;
  try {
    const headers = { Accept: as === 'json' ? 'application/json' : 'image/svg+xml' };
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) headers['X-API-Key'] = key;
    response = await fetch(url, { headers });
  } catch (e) {
    throw new ApiError('the API is unreachable');
  }
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    const message = body?.error?.message ?? `${response.status} ${response.statusText}`;
    if (response.status === 401) throw new ApiError(`${message}: open the dashboard as /#key=YOUR-KEY (a key with the read scope)`);
    throw new ApiError(message);
  }
  return as === 'json' ? response.json() : response.text();
}

function showError(container, error) {
  container.replaceChildren(el('p', { class: 'error' }, error instanceof ApiError ? error.message : String(error)));
}

// ---- state and the URL fragment ----

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  takeKey(params);
  if (params.get('range') in RANGE_DAYS || params.get('range') === 'custom') state.range = params.get('range');
  state.from = params.get('from') ?? '';
  state.to = params.get('to') ?? '';
  state.bucket = params.get('bucket') ?? '';
  state.source = params.get('source') ?? '';
  state.brands = (params.get('brands') ?? '').split(',').filter(Boolean).slice(0, MAX_BRANDS);
  state.focus = params.get('focus') ?? 'all';
  state.view = params.get('view') === 'emotions' ? 'emotions' : 'sentiment';
  state.comments = params.get('comments') ?? '';
  state.title = params.get('title') ?? '';
  if (state.range === 'custom' && !(state.from && state.to)) state.range = '7d';
}

function writeHash() {
  const params = new URLSearchParams({ range: state.range });
  if (state.range === 'custom') { params.set('from', state.from); params.set('to', state.to); }
  for (const name of ['bucket', 'source']) if (state[name]) params.set(name, state[name]);
  if (state.brands.length) params.set('brands', state.brands.join(','));
  if (state.focus !== 'all') params.set('focus', state.focus);
  if (state.view !== 'sentiment') params.set('view', state.view);
  if (state.comments) { params.set('comments', state.comments); params.set('title', state.title); }
  history.replaceState(null, '', `#${params}`);
}

/** The window every panel shows: a rolling range up to now, or whole local days from `from` to `to`. */
function timeWindow() {
  if (state.range === 'custom') {
    const from = new Date(`${state.from}T00:00:00`);
    const to = new Date(`${state.to}T00:00:00`);
    to.setDate(to.getDate() + 1);
    return { from: from.toISOString(), to: to.toISOString(), tz: TIME_ZONE };
  }
  const to = new Date();
  to.setSeconds(60, 0);
  const from = new Date(to.getTime() - RANGE_DAYS[state.range] * 86400e3);
  return { from: from.toISOString(), to: to.toISOString(), tz: TIME_ZONE };
}

function windowParams() {
  const w = timeWindow();
  return { ...w, bucket: state.bucket, source: state.source };
}

/** `brand:apple`, `brand_group:tech`, `tag:apple`, `entity:ORG:Apple`, `source:x` or `all` as trend-route parameters. */
function sliceParams(slice) {
  if (slice === 'all') return {};
  const at = slice.indexOf(':');
  return { [slice.slice(0, at)]: slice.slice(at + 1) };
}

function sliceLabel(slice) {
  if (slice === 'all') return 'All comments';
  const at = slice.indexOf(':');
  const kind = slice.slice(0, at);
  const value = slice.slice(at + 1);
  if (kind === 'tag') return `#${value}`;
  if (kind === 'brand_group') return `${value} (group)`;
  return value;
}

/** The catalogue's brand and group names (lower case), from `/v1/brands`. */
let catalogue = { brands: new Set(), groups: new Set() };

/** What a brand typed into the picker means: a brand or group of the catalogue, else a tag, unless it names
 * its kind (`tag:x`, `entity:x`, `brand:x`, `brand_group:x`, `source:x`). */
function brandSlice(raw) {
  const value = raw.trim();
  if (!value) return null;
  if (/^(brand|brand_group|tag|entity|source):./.test(value)) return value;
  const key = value.toLowerCase().replace(/\s+/g, ' ');
  if (catalogue.brands.has(key)) return `brand:${key}`;
  if (catalogue.groups.has(key)) return `brand_group:${key}`;
  return `tag:${key}`;
}

// ---- formatting ----

const numberFormat = new Intl.NumberFormat();
const fmt = (n) => numberFormat.format(n);
const pct = (x) => (x === null || x === undefined ? '–' : `${(x * 100).toFixed(1)}%`);
const signed = (x) => (x === null || x === undefined ? '–' : `${x >= 0 ? '+' : ''}${x.toFixed(2)}`);
const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
/** A bucket's start as its bucket reads: a day or week by its date, shorter buckets by their time too. */
const bucketWhen = (iso, unit) => (unit === 'day' || unit === 'week'
  ? new Date(iso).toLocaleDateString(undefined, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' })
  : when(iso));

/** One comment, as the search results, the spike examples and the side panel show it. */
function commentCard(hit) {
  const text = el('div', { class: 'text' });
  // A search snippet comes HTML-escaped from the index, with only <b> marks added.
  if (hit.snippet) text.innerHTML = hit.snippet; else text.textContent = hit.text;
  const info = el('small', {}, `${hit.source} · ${when(hit.created_at)}`);
  if (hit.sentiment) info.append(' · ', el('span', { class: `sentiment-${hit.sentiment}` }, hit.sentiment));
  for (const emotion of hit.emotions ?? []) if (emotion !== 'neutral') info.append(el('span', { class: 'emotion' }, emotion));
  if (hit.language && hit.language !== 'en') info.append(el('span', { class: 'lang', title: 'language' }, languageName(hit.language)));
  for (const tag of hit.tags) info.append(el('span', { class: 'tag' }, `#${tag}`));
  for (const entity of hit.entities) info.append(el('span', { class: 'entity' }, `${entity.label} ${entity.name}`));
  // A cluster of near-duplicates shown once (search collapses copies): how often it was posted.
  if (hit.cluster_size > 1) info.append(el('span', { class: 'copies', title: 'near-duplicates (retweets, copy-paste) shown once' }, `posted ${fmt(hit.cluster_size)}×`));
  const card = el('li', { class: 'comment', 'data-id': `${hit.source}/${hit.id}` }, text, info);
  const why = el('button', { type: 'button', class: 'why-button', title: 'which words made the model read it so' }, 'why?');
  why.addEventListener('click', () => explainComment(hit, card, why));
  info.append(why);
  return card;
}

// ---- explanations: which words carry a comment's sentiment ----

/** Strength thresholds of the four marking levels, strongest first (a word's weight against the strongest
 * word's; the API gives words too weak to count no strength). Weaker words are not marked. */
const WHY_LEVELS = [0.75, 0.5, 0.25, 0.1];

/** Replaces a comment card's text by the served model's reading of it: the words that support its sentiment,
 * marked by strength (underline weight and shade, and the weight in each word's title), and a legend. */
async function explainComment(hit, card, button) {
  button.disabled = true;
  button.textContent = 'reading…';
  try {
    const body = await api(`/v1/comments/${encodeURIComponent(hit.source)}/${encodeURIComponent(hit.id)}`, { explain: true });
    const { sentiment, emotion } = body.explanation ?? {};
    if (!sentiment) throw new ApiError('the served model reads no sentiment');
    card.querySelector('.text').replaceChildren(...markedWords(body.text, sentiment));
    const strongest = (label) => label.words.filter((w) => w.strength >= WHY_LEVELS.at(-1))
      .sort((a, b) => b.weight - a.weight).slice(0, 3).map((w) => `“${w.text}”`).join(', ');
    const legend = el('div', { class: 'why-legend', 'data-label': sentiment.label },
      `Read as ${sentiment.label} (p ${sentiment.probability.toFixed(2)}) because of the marked words; `,
      'the thicker the underline, the more the word raises that probability (against the strongest word): ',
      ...WHY_LEVELS.slice().reverse().map((t, i) => el('mark', { class: `why why-${sentiment.label} w${i + 1}` }, `≥ ${t}`)));
    if (emotion && emotion.label !== 'neutral' && strongest(emotion)) {
      legend.append(el('div', {}, `Emotion ${emotion.label} (p ${emotion.probability.toFixed(2)}): ${strongest(emotion)}`));
    }
    card.append(legend);
    button.remove();
  } catch (error) {
    button.disabled = false;
    button.textContent = 'why?';
    const failed = el('div', { class: 'why-legend' });
    showError(failed, error);
    card.append(failed);
  }
}

/** `text` with the words of `label` that reach a level marked; offsets count code points, as the API's do. */
function markedWords(text, label) {
  const chars = Array.from(text);
  const out = [];
  let at = 0;
  for (const word of label.words) {
    const level = WHY_LEVELS.findIndex((t) => word.strength >= t);
    if (level < 0) continue;
    out.push(chars.slice(at, word.start).join(''));
    out.push(el('mark', {
      class: `why why-${label.label} w${WHY_LEVELS.length - level}`,
      title: `${signed(word.weight)} log-odds toward ${label.label}`,
      'data-strength': word.strength.toFixed(3),
    }, chars.slice(word.start, word.end).join('')));
    at = word.end;
  }
  out.push(chars.slice(at).join(''));
  return out;
}

// ---- panels ----

function renderToolbar() {
  for (const button of document.querySelectorAll('#ranges button')) {
    button.classList.toggle('active', button.dataset.range === state.range);
  }
  const w = timeWindow();
  const day = (iso) => {
    const d = new Date(iso);
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  };
  $('from').value = state.range === 'custom' ? state.from : day(w.from);
  $('to').value = state.range === 'custom' ? state.to : day(new Date(new Date(w.to).getTime() - 1).toISOString());
  $('bucket').value = state.bucket;
  $('source').value = state.source;
  $('brand-chips').replaceChildren(...state.brands.map((slice) => el('span', { class: 'chip', 'data-slice': slice },
    sliceLabel(slice),
    el('button', { type: 'button', 'aria-label': `remove ${sliceLabel(slice)}`, onclick: () => removeBrand(slice) }, '×'))));
  if (state.focus !== 'all' && !state.brands.includes(state.focus)) state.focus = 'all';
  $('view-tabs').replaceChildren(...['sentiment', 'emotions'].map((view) => el('button', {
    type: 'button', role: 'tab', class: view === state.view ? 'active' : '', 'aria-selected': String(view === state.view),
    'data-view': view, onclick: () => { state.view = view; changed(); },
  }, view === 'sentiment' ? 'by sentiment' : 'by emotion')));
  $('focus-tabs').replaceChildren(...['all', ...state.brands].map((slice) => el('button', {
    type: 'button', role: 'tab', class: slice === state.focus ? 'active' : '', 'aria-selected': String(slice === state.focus),
    'data-slice': slice, onclick: () => { state.focus = slice; changed(); },
  }, sliceLabel(slice))));
}

/** The volume chart: stacked by sentiment with the spikes marked, or a line per emotion (comments the
 * model found each emotion in) for the slice in focus. */
function volumeChart(params) {
  if (state.view === 'sentiment') return api('/v1/trends/spikes', { ...params, format: 'svg' }, 'text');
  if (state.focus !== 'all') {
    return Promise.resolve('<p class="empty">Emotions are charted over all comments: pick "All comments".</p>');
  }
  const slices = EMOTIONS.map((e) => `emotion:${e}`).join(',');
  return api('/v1/trends/share', { ...params, slices, measure: 'comments', format: 'svg' }, 'text');
}

async function loadVolume() {
  const params = { ...windowParams(), ...sliceParams(state.focus) };
  $('volume-title').textContent = state.view === 'sentiment' ? 'Volume and sentiment' : 'Volume by emotion';
  try {
    const [svg, body] = await Promise.all([
      volumeChart(params),
      api('/v1/trends/spikes', { ...params, examples: 3 }),
    ]);
    $('volume-chart').innerHTML = svg;
    const total = body.timeline.total;
    const scored = total.negative + total.neutral + total.positive;
    $('kpi-comments').textContent = fmt(total.comments);
    const unscored = body.timeline.without_sentiment;
    $('kpi-unscored').textContent = unscored ? `${fmt(unscored)} without sentiment` : '';
    $('kpi-unscored').title = 'in a language the models never learned: counted in volume, left out of the sentiment figures';
    $('kpi-negative').textContent = scored ? pct(total.negative / scored) : '–';
    $('kpi-net').textContent = signed(body.timeline.net_sentiment);
    $('kpi-spikes').textContent = fmt(body.spikes.length);
    renderSpikes(body, params);
  } catch (error) {
    showError($('volume-chart'), error);
    $('spikes').replaceChildren();
    for (const id of ['kpi-comments', 'kpi-negative', 'kpi-net', 'kpi-spikes']) $(id).textContent = '–';
    $('kpi-unscored').textContent = '';
  }
}

function renderSpikes(body, params) {
  const points = body.timeline.points;
  const at = (iso) => bucketWhen(iso, body.timeline.bucket);
  const end = (start) => {
    const i = points.findIndex((p) => p.start === start);
    return i >= 0 && i + 1 < points.length ? points[i + 1].start : body.timeline.to;
  };
  // One item per peak, as the chart marks them: a burst of complaints departs in volume and in negative
  // share at once, and is one event.
  const byPeak = new Map();
  for (const spike of body.spikes) {
    const negative = spike.kind === 'negative_share';
    const what = negative
      ? `${(spike.value * 100).toFixed(0)}% negative against ${(spike.baseline * 100).toFixed(0)}% usually`
      : `${fmt(spike.value)} comments against ${fmt(Math.round(spike.baseline))} usually`;
    const seen = byPeak.get(spike.peak);
    if (seen) {
      seen.whats.push(`${what} (z = ${spike.z.toFixed(1)})`);
      seen.negativeOnly &&= negative;
      if (!negative) seen.examples = spike.examples;
    } else {
      byPeak.set(spike.peak, { spike, negativeOnly: negative, whats: [`${what} (z = ${spike.z.toFixed(1)})`], examples: spike.examples });
    }
  }
  const items = [...byPeak.values()].reverse().map(({ spike, negativeOnly, whats, examples }) => {
    const query = new URLSearchParams({ ...sliceParams(state.focus), from: spike.peak, to: end(spike.peak) });
    if (params.source) query.set('source', params.source);
    if (negativeOnly) query.set('sentiment', 'negative');
    const title = `Spike ${at(spike.peak)}: ${whats.join('; ')}`;
    return el('li', { class: 'spike-item', 'data-comments': query.toString(), 'data-title': title, 'data-peak': spike.peak },
      el('div', {}, el('span', { class: 'what' }, at(spike.peak)), ` · ${whats.join('; ')}`,
        spike.buckets > 1 ? ` · ${spike.buckets} buckets from ${at(spike.start)}` : ''),
      examples.map((hit) => el('p', { class: 'example' }, `“${hit.text}”`)));
  });
  $('spikes').replaceChildren(...(items.length ? items : [el('li', { class: 'empty' }, 'No spikes in this period.')]));
}

async function loadComparison() {
  const share = $('share-chart');
  const sentiment = $('sentiment-chart');
  if (state.brands.length < 2) {
    const hint = 'Pick two brands or more above to compare them.';
    share.replaceChildren(el('p', { class: 'empty' }, hint));
    sentiment.replaceChildren(el('p', { class: 'empty' }, hint));
    return;
  }
  // Brands compared hour by hour are mostly noise over a week: lines go by the day unless the period is short
  // or a bucket is chosen.
  const w = windowParams();
  const days = (new Date(w.to) - new Date(w.from)) / 86400e3;
  const bucket = state.bucket || (days > 2 ? 'day' : 'hour');
  const params = { ...w, bucket, slices: state.brands.join(','), format: 'svg' };
  await Promise.all([
    api('/v1/trends/share', params, 'text').then((svg) => { share.innerHTML = svg; }, (e) => showError(share, e)),
    api('/v1/trends/share', { ...params, measure: 'net_sentiment' }, 'text')
      .then((svg) => { sentiment.innerHTML = svg; }, (e) => showError(sentiment, e)),
  ]);
}

function sentimentBar(counts) {
  const scored = counts.negative + counts.neutral + counts.positive;
  const bar = el('span', { class: 'bar', title: `${counts.negative} negative, ${counts.neutral} neutral, ${counts.positive} positive` });
  for (const name of ['negative', 'neutral', 'positive']) {
    const part = el('span', { class: name });
    part.style.width = scored ? `${(100 * counts[name]) / scored}%` : '0';
    bar.append(part);
  }
  return bar;
}

/** The examples query of an entity row: a name (any type) when ranked by name, else TYPE:name. */
function entityQuery(entity) {
  return entity.types || !entity.label ? entity.name : `${entity.label}:${entity.name}`;
}

/** A name's types as its row's hover text ("ORG 120, MISC 4"), so the type shown is not the whole story. */
function typesTitle(entity) {
  return entity.types ? entity.types.map((t) => `${t.label} ${fmt(t.comments)}`).join(', ') : undefined;
}

/** A ranking of names (by=name, the default), accounts (label=handle) or hashtags (label=hashtag). */
async function loadRanking(tableId, params, heading, empty, marker) {
  const w = windowParams();
  const table = $(tableId);
  try {
    const body = await api('/v1/trends/entities', { from: w.from, to: w.to, source: w.source, limit: 10, ...params });
    const most = Math.max(1, ...body.entities.map((e) => e.comments));
    const rows = body.entities.map((e) => {
      const query = new URLSearchParams({ entity: entityQuery(e), from: body.from, to: body.to });
      if (w.source) query.set('source', w.source);
      const volume = el('span', { class: 'volume' });
      volume.style.width = `${(100 * e.comments) / most}%`;
      const chip = marker ? null : el('span', { class: 'label-chip', title: typesTitle(e) }, e.label ?? '');
      return el('tr', { 'data-comments': query.toString(), 'data-title': `Comments mentioning ${marker}${e.name}`, 'data-entity': entityQuery(e) },
        el('td', {}, chip, `${marker}${e.name}`, volume),
        el('td', { class: 'n' }, fmt(e.comments)),
        el('td', {}, sentimentBar(e)),
        el('td', { class: 'n' }, signed(e.net_sentiment)));
    });
    table.replaceChildren(
      el('tr', {}, el('th', {}, heading), el('th', { class: 'n' }, 'Comments'), el('th', {}, 'Sentiment'), el('th', { class: 'n' }, 'Net')),
      ...(rows.length ? rows : [el('tr', {}, el('td', { class: 'empty', colspan: 4 }, empty))]));
  } catch (error) {
    showError(table, error);
  }
}

const loadEntities = () => loadRanking('top-entities', {}, 'Name', 'No names in this period.', '');
const loadAccounts = () => loadRanking('top-accounts', { label: 'handle' }, 'Account', 'No accounts mentioned in this period.', '@');
const loadHashtags = () => loadRanking('top-hashtags', { label: 'hashtag' }, 'Hashtag', 'No hashtags in this period.', '#');

/** The language mix of the period: comments per detected language, their share, and how many of them have a
 * sentiment (the heads read only the languages they learned). A row opens its comments. */
async function loadLanguages() {
  const w = windowParams();
  const table = $('languages');
  try {
    const body = await api('/v1/trends/entities', { from: w.from, to: w.to, source: w.source, by: 'lang', limit: 20 });
    const all = body.entities.reduce((sum, e) => sum + e.comments, 0);
    const rows = body.entities.map((e) => {
      const query = new URLSearchParams({ lang: e.name, from: body.from, to: body.to });
      if (w.source) query.set('source', w.source);
      const scored = e.negative + e.neutral + e.positive;
      const volume = el('span', { class: 'volume' });
      volume.style.width = `${(100 * e.comments) / Math.max(1, body.entities[0]?.comments ?? 1)}%`;
      return el('tr', { 'data-comments': query.toString(), 'data-title': `Comments in ${languageName(e.name)}`, 'data-lang': e.name },
        el('td', {}, languageName(e.name), volume),
        el('td', { class: 'n' }, fmt(e.comments)),
        el('td', { class: 'n' }, all ? pct(e.comments / all) : '–'),
        el('td', {}, scored ? sentimentBar(e) : el('span', { class: 'empty', title: 'not read by the sentiment model' }, 'not scored')));
    });
    table.replaceChildren(
      el('tr', {}, el('th', {}, 'Language'), el('th', { class: 'n' }, 'Comments'), el('th', { class: 'n' }, 'Share'), el('th', {}, 'Sentiment')),
      ...(rows.length ? rows : [el('tr', {}, el('td', { class: 'empty', colspan: 4 }, 'No comments in this period.'))]));
  } catch (error) {
    showError(table, error);
  }
}

async function loadTrending() {
  const w = windowParams();
  const table = $('trending');
  try {
    const body = await api('/v1/trends/trending', { from: w.from, to: w.to, source: w.source, limit: 10, min_mentions: 3 });
    const rows = body.entities.map((e) => {
      const query = new URLSearchParams({ entity: entityQuery(e), from: body.from, to: body.to });
      if (w.source) query.set('source', w.source);
      return el('tr', { 'data-comments': query.toString(), 'data-title': `Comments mentioning ${e.name}`, 'data-entity': entityQuery(e) },
        el('td', {}, el('span', { class: 'label-chip', title: typesTitle(e) }, e.label ?? ''), e.name),
        el('td', { class: 'n' }, fmt(e.comments)),
        el('td', { class: 'n' }, fmt(e.previous)),
        el('td', { class: 'n' }, e.growth === undefined ? 'new' : `${e.growth >= 0 ? '+' : ''}${(e.growth * 100).toFixed(0)}%`),
        el('td', {}, sentimentBar(e)));
    });
    table.replaceChildren(
      el('tr', {}, el('th', {}, 'Name'), el('th', { class: 'n' }, 'Now'), el('th', { class: 'n' }, 'Before'), el('th', { class: 'n' }, 'Growth'), el('th', {}, 'Sentiment')),
      ...(rows.length ? rows : [el('tr', {}, el('td', { class: 'empty', colspan: 5 }, 'Nothing is rising in this period.'))]));
  } catch (error) {
    showError(table, error);
  }
}

/** Themes of the period, most comments first: keywords, growth, sentiment; a row opens its comments. */
async function loadThemes() {
  const w = windowParams();
  const table = $('themes');
  try {
    const body = await api('/v1/themes', { from: w.from, to: w.to, source: w.source, limit: 12 });
    const most = Math.max(1, ...body.themes.map((t) => t.counts.comments));
    const rows = body.themes.map((t) => {
      const query = new URLSearchParams({ theme: t.id, from: body.from, to: body.to });
      if (w.source) query.set('source', w.source);
      const volume = el('span', { class: 'volume' });
      volume.style.width = `${(100 * t.counts.comments) / most}%`;
      const growth = t.growth === undefined || t.growth === null ? 'new' : `${t.growth >= 0 ? '+' : ''}${(t.growth * 100).toFixed(0)}%`;
      return el('tr', { 'data-comments': query.toString(), 'data-title': `Theme: ${t.label}`, 'data-theme': String(t.id) },
        el('td', { title: t.representative_text ?? '' }, el('strong', {}, t.label), ' ', el('small', {}, t.keywords.slice(3, 6).join(', ')), volume),
        el('td', { class: 'n' }, fmt(t.counts.comments)),
        el('td', { class: 'n' }, growth),
        el('td', {}, sentimentBar(t.counts)),
        el('td', { class: 'n' }, signed(t.net_sentiment)));
    });
    table.replaceChildren(
      el('tr', {}, el('th', {}, 'Theme'), el('th', { class: 'n' }, 'Comments'), el('th', { class: 'n' }, 'Growth'), el('th', {}, 'Sentiment'), el('th', { class: 'n' }, 'Net')),
      ...(rows.length ? rows : [el('tr', {}, el('td', { class: 'empty', colspan: 5 }, 'No themes in this period yet (they are found as comments arrive).'))]));
  } catch (error) {
    showError(table, error);
  }
}

/** What the slice in focus likes and dislikes: its aspects by mentions, each with the clearest praise and
 * complaint. */
async function loadAspects() {
  const w = windowParams();
  const table = $('aspects');
  try {
    const body = await api('/v1/aspects', { from: w.from, to: w.to, source: w.source, slice: state.focus, limit: 12, examples: 1 });
    const most = Math.max(1, ...body.aspects.map((a) => a.mentions));
    const quote = (aspect, sentiment) => {
      const example = aspect.examples.find((e) => e.sentiment === sentiment);
      if (!example) return null;
      return el('div', { class: `quote ${sentiment}`, 'data-sentiment': sentiment, title: example.text },
        el('small', {}, `${sentiment === 'positive' ? '+' : '−'} ${example.text}`));
    };
    const rows = body.aspects.map((a) => {
      const volume = el('span', { class: 'volume' });
      volume.style.width = `${(100 * a.mentions) / most}%`;
      return el('tr', { 'data-aspect': a.name },
        el('td', {}, el('strong', {}, a.name), a.also.length ? el('small', {}, ` also ${a.also.join(', ')}`) : null, volume,
          quote(a, 'positive'), quote(a, 'negative')),
        el('td', { class: 'n' }, fmt(a.mentions)),
        el('td', {}, sentimentBar(a)),
        el('td', { class: 'n' }, signed(a.net_sentiment)));
    });
    table.replaceChildren(
      el('tr', {}, el('th', {}, 'Aspect'), el('th', { class: 'n' }, 'Mentions'), el('th', {}, 'Sentiment toward it'), el('th', { class: 'n' }, 'Net')),
      ...(rows.length ? rows : [el('tr', {}, el('td', { class: 'empty', colspan: 4 }, 'No aspects found in these comments.'))]));
  } catch (error) {
    showError(table, error);
  }
}

/** The picker's suggestions: the catalogue's brands and groups, most mentioned first, then producer tags.
 * Returns the slices compared when none is chosen: the catalogue's most mentioned brands, else tags. */
async function loadBrandSuggestions() {
  const w = windowParams();
  try {
    const ranking = (by) => api('/v1/trends/entities', { from: w.from, to: w.to, by, limit: 20 });
    const [listed, brands, groups, tags] = await Promise.all([api('/v1/brands'), ranking('brand'), ranking('brand_group'), ranking('tag')]);
    catalogue = {
      brands: new Set(listed.brands.map((b) => b.name.toLowerCase().replace(/\s+/g, ' '))),
      groups: new Set(listed.brands.filter((b) => b.group).map((b) => b.group.toLowerCase().replace(/\s+/g, ' '))),
    };
    const counted = new Map(brands.entities.map((b) => [b.name, b.comments]));
    const names = listed.brands.map((b) => b.name)
      .sort((a, b) => (counted.get(b.toLowerCase()) ?? 0) - (counted.get(a.toLowerCase()) ?? 0));
    $('brand-suggestions').replaceChildren(
      ...names.map((name) => el('option', { value: name }, `brand · ${fmt(counted.get(name.toLowerCase()) ?? 0)} comments`)),
      ...groups.entities.map((g) => el('option', { value: `brand_group:${g.name}` }, `group · ${fmt(g.comments)} comments`)),
      ...tags.entities.map((t) => el('option', { value: `tag:${t.name}` }, `tag · ${fmt(t.comments)} comments`)));
    const ranked = brands.entities.filter((b) => b.comments > 0).map((b) => `brand:${b.name}`);
    return ranked.length ? ranked : tags.entities.map((t) => `tag:${t.name}`);
  } catch (error) {
    return [];
  }
}

/** The alerts that fired most recently, each opening the comments of its slice and bucket. */
async function loadAlerts() {
  const list = $('alerts');
  try {
    const body = await api('/v1/alerts', { limit: 10 });
    const items = body.alerts.map((alert) => {
      const found = alert.body;
      const query = new URLSearchParams({ from: alert.bucket_start, to: alert.bucket_end });
      for (const [name, value] of Object.entries(found.slice ?? {})) query.set(name, value);
      if (found.entity && !found.slice?.brand && !found.slice?.brand_group && !found.slice?.entity) query.set('entity', found.entity.name);
      if (found.kind === 'negative_share_spike' || found.kind === 'net_sentiment_below') query.set('sentiment', 'negative');
      const [line, ...quote] = alert.text.split('\n');
      return el('li', { class: 'spike-item', 'data-alert': alert.id, 'data-comments': query.toString(), 'data-title': line },
        el('div', {}, el('span', { class: 'what' }, when(alert.fired_at)), ` · ${line}`,
          alert.webhook_status ? ` · webhook ${alert.webhook_status}` : ''),
        quote.map((q) => el('p', { class: 'example' }, q.replace(/^> /, '“') + '”')));
    });
    list.replaceChildren(...(items.length ? items : [el('li', { class: 'empty' }, 'No alerts yet: define a rule with POST /v1/alerts/rules (see /docs).')]));
  } catch (error) {
    showError(list, error);
  }
}

async function loadReports() {
  const reports = $('reports');
  const schedules = $('schedules');
  try {
    const [listed, scheduled] = await Promise.all([api('/v1/reports', { limit: 10 }), api('/v1/reports/schedules')]);
    const rows = listed.reports.map((r) => el('tr', { 'data-report': r.id },
      el('td', {}, r.name),
      el('td', {}, `${when(r.window_from)} – ${when(r.window_to)}`),
      el('td', {}, when(r.created_at)),
      el('td', {}, r.formats.map((f) => el('a', { href: `/v1/reports/${r.id}?format=${f}`, target: '_blank', rel: 'noopener' }, f)).flatMap((a) => [a, ' '])),
      el('td', {}, r.webhook_status ?? '')));
    reports.replaceChildren(
      el('tr', {}, el('th', {}, 'Report'), el('th', {}, 'Covers'), el('th', {}, 'Made'), el('th', {}, 'Open'), el('th', {}, 'Webhook')),
      ...(rows.length ? rows : [el('tr', {}, el('td', { class: 'empty', colspan: 5 }, 'No reports yet: schedule one with POST /v1/reports/schedules (see /openapi.json) or run `murmur report --once`.'))]));
    const planned = scheduled.schedules.map((s) => el('tr', {},
      el('td', {}, s.name), el('td', {}, el('code', {}, s.cron)), el('td', {}, s.time_zone), el('td', {}, `next ${when(s.next_run_at)}`)));
    schedules.replaceChildren(...(planned.length ? planned : [el('tr', {}, el('td', { class: 'empty' }, 'No schedules.'))]));
  } catch (error) {
    showError(reports, error);
    schedules.replaceChildren();
  }
}

// ---- search ----

async function search(more) {
  const q = $('q').value.trim();
  if (!q) return;
  const params = { q, mode: $('mode').value, sentiment: $('sentiment').value, emotion: $('emotion').value,
    entity: $('entity').value.trim(), tag: $('tag').value.trim(), lang: $('lang').value.trim().toLowerCase(),
    source: state.source, limit: 20, facets: !more,
    collapse: true };
  if ($('in-range').checked) Object.assign(params, { from: timeWindow().from, to: timeWindow().to });
  if (more && searchCursor) params.cursor = searchCursor;
  const results = $('search-results');
  try {
    const body = await api('/v1/search', params);
    searchCursor = body.next_cursor;
    $('more').hidden = !searchCursor;
    if (!more) {
      results.replaceChildren();
      const ranked = { bm25: 'matching comments', semantic: 'comments ranked by meaning', hybrid: 'comments ranked by words and meaning' };
      $('search-meta').textContent = `${fmt(body.total)} ${ranked[body.mode]}`;
      renderFacets(body.facets);
    }
    results.append(...body.hits.map(commentCard));
  } catch (error) {
    results.replaceChildren();
    $('facets').replaceChildren();
    $('more').hidden = true;
    showError($('search-meta'), error);
  }
}

function renderFacets(facets) {
  if (!facets) return;
  const chip = (text, onclick) => el('button', { type: 'button', onclick }, text);
  const sentiments = Object.entries(facets.sentiment).filter(([, n]) => n > 0)
    .map(([name, n]) => chip(`${name} ${fmt(n)}`, () => { $('sentiment').value = name; search(false); }));
  const emotions = Object.entries(facets.emotion ?? {}).filter(([name, n]) => n > 0 && name !== 'neutral')
    .map(([name, n]) => chip(`${name} ${fmt(n)}`, () => { $('emotion').value = name; search(false); }));
  const entities = facets.entities.slice(0, 10)
    .map((e) => chip(`${e.label} ${e.name} ${fmt(e.comments)}`, () => { $('entity').value = entityQuery(e); search(false); }));
  $('facets').replaceChildren(...sentiments, ...emotions, ...entities);
}

// ---- the side panel: the comments behind a figure ----

/** Opens the side panel on the comments `query` (a /v1/trends/examples query) stands for; the fragment keeps
 * it, so a link to the page shows the same comments. */
async function openComments(query, title) {
  Object.assign(state, { comments: query, title });
  writeHash();
  $('drawer').hidden = false;
  $('drawer-title').textContent = title;
  $('drawer-meta').textContent = 'loading…';
  const list = $('drawer-list');
  list.replaceChildren();
  try {
    const params = Object.fromEntries(new URLSearchParams(query));
    const body = await api('/v1/trends/examples', { ...params, limit: 20 });
    $('drawer-meta').textContent = body.examples.length
      ? `${body.examples.length} most representative, ${when(body.from)} – ${when(body.to)}`
      : 'No comments.';
    list.replaceChildren(...body.examples.map(commentCard));
  } catch (error) {
    showError($('drawer-meta'), error);
  }
}

document.addEventListener('click', (event) => {
  const target = event.target.closest('[data-comments]');
  if (!target) return;
  const title = target.dataset.title ?? target.querySelector('title')?.textContent ?? 'Comments';
  openComments(target.dataset.comments, title);
});

// ---- refresh: on changes, and when new comments are indexed ----

/** Redraws every panel; a change while a redraw runs gets one more redraw after it. */
async function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    // Without brands chosen, the catalogue's most talked-about brands of the period are compared (tags
    // where the catalogue is empty); they appear as a demo or a new deployment fills up.
    const suggested = await loadBrandSuggestions();
    if (!state.brands.length && suggested.length) {
      state.brands = suggested.slice(0, 4);
      writeHash();
    }
    renderToolbar();
    await Promise.all([loadVolume(), loadComparison(), loadEntities(), loadAccounts(), loadHashtags(), loadLanguages(), loadTrending(), loadThemes(), loadAspects(), loadAlerts(), loadReports()]);
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes ?? 0) + 1);
    document.body.dataset.indexed = String(indexed ?? '');
  })();
  try {
    await refreshing;
  } finally {
    refreshing = null;
  }
  if (refreshAgain) {
    refreshAgain = false;
    await refresh();
  }
}

function changed() {
  writeHash();
  refresh();
}

function removeBrand(slice) {
  state.brands = state.brands.filter((s) => s !== slice);
  changed();
}

async function pollStatus() {
  const status = $('status');
  try {
    const body = await api('/readyz');
    status.className = 'status live';
    status.textContent = `${fmt(body.indexed)} comments indexed · updated ${new Date().toLocaleTimeString()}`;
    const grew = indexed !== null && body.indexed !== indexed;
    indexed = body.indexed;
    if (grew) await refresh();
  } catch (error) {
    status.className = 'status down';
    status.textContent = error.message;
  }
}

async function start() {
  readHash();
  for (const button of document.querySelectorAll('#ranges button')) {
    button.addEventListener('click', () => { state.range = button.dataset.range; changed(); });
  }
  for (const id of ['from', 'to']) {
    $(id).addEventListener('change', () => {
      if (!$('from').value || !$('to').value || $('from').value > $('to').value) return;
      Object.assign(state, { range: 'custom', from: $('from').value, to: $('to').value });
      changed();
    });
  }
  $('bucket').addEventListener('change', () => { state.bucket = $('bucket').value; changed(); });
  $('source').addEventListener('change', () => { state.source = $('source').value.trim(); changed(); });
  $('brand-input').addEventListener('change', () => {
    const slice = brandSlice($('brand-input').value);
    $('brand-input').value = '';
    if (slice && !state.brands.includes(slice) && state.brands.length < MAX_BRANDS) {
      state.brands.push(slice);
      changed();
    }
  });
  $('search-form').addEventListener('submit', (event) => { event.preventDefault(); search(false); });
  $('more').addEventListener('click', () => search(true));
  const closeDrawer = () => {
    $('drawer').hidden = true;
    Object.assign(state, { comments: '', title: '' });
    writeHash();
  };
  $('drawer-close').addEventListener('click', closeDrawer);
  document.addEventListener('keydown', (event) => { if (event.key === 'Escape') closeDrawer(); });
  window.addEventListener('hashchange', () => {
    readHash();
    refresh();
    if (state.comments) openComments(state.comments, state.title || 'Comments'); else $('drawer').hidden = true;
  });

  await pollStatus();
  writeHash();
  await refresh();
  if (state.comments) await openComments(state.comments, state.title || 'Comments');
  document.body.dataset.ready = 'true';
  setInterval(pollStatus, STATUS_EVERY_MS);
}

start();
