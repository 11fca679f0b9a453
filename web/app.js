// The page of `hotplugd serve`, built only on its JSON API. Everything a device reports is
// chosen by whoever built the device: it is put on the page as text (textContent), never as
// markup. uPlot draws the rates chart.
import uPlot from 'uplot';

const main = document.getElementById('main');
let token = sessionStorage.getItem('hotplugd-token');
let leaving = () => {};

/** An element with text children only: strings become text nodes, never markup. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') node.className = value;
    else if (key === 'href') node.setAttribute('href', value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  return node;
}

const time = (t) => (t === null || t === undefined ? '?' : new Date(t).toLocaleString());

class Unauthorized extends Error {}

async function api(path) {
  const res = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (res.status === 401) throw new Unauthorized();
  const body = await res.json();
  if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
  return body;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function askToken() {
  const input = el('input', { type: 'password', placeholder: 'token', id: 'token' });
  const go = () => {
    token = input.value.trim();
    sessionStorage.setItem('hotplugd-token', token);
    route();
  };
  input.addEventListener('keydown', (e) => e.key === 'Enter' && go());
  show(el('h2', {}, 'A token is needed'), el('p', {}, 'This server asks for the bearer token in its --auth-token-file.'), input, el('button', { onclick: go }, 'Open'));
}

async function devicesView(q = '') {
  const search = el('input', { type: 'search', placeholder: 'name, subsystem, vendor:product, serial', value: q, id: 'search' });
  const body = el('tbody');
  const table = el('table', { id: 'devices' }, el('thead', {}, el('tr', {}, ['', 'device', 'names', 'subsystem', 'vendor / model', 'first seen', 'last seen'].map((h) => el('th', {}, h)))), body);
  const load = async () => {
    const { devices } = await api(`/api/devices?q=${encodeURIComponent(search.value)}`);
    body.replaceChildren(...devices.map((d) => el('tr', {},
      el('td', { class: d.present ? 'present' : 'gone' }, d.present ? 'present' : 'gone'),
      el('td', { class: 'mono' }, el('a', { href: `#/device/${d.id}` }, d.key)),
      el('td', { class: 'mono' }, d.names.join(' ')),
      el('td', {}, d.subsystem),
      el('td', {}, [d.vendor_id && `${d.vendor_id}:${d.product_id}`, d.vendor, d.model, d.serial && `serial ${d.serial}`].filter(Boolean).join(' ')),
      el('td', {}, time(d.first_seen)),
      el('td', {}, time(d.last_seen)))));
    if (devices.length === 0) body.append(el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'No devices match.')));
  };
  let timer;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => load().catch(fail), 200);
  });
  show(el('h2', {}, 'Devices'), search, table);
  await load();
}

function sessionBars(sessions) {
  const now = Date.now();
  const times = sessions.flatMap((s) => [s.pluggedAt, s.unpluggedAt]).filter((t) => t !== null);
  if (times.length === 0) return el('p', { class: 'muted' }, 'No plug-in sessions recorded.');
  const start = Math.min(...times);
  const end = Math.max(now, ...times);
  const span = Math.max(end - start, 1);
  const bars = sessions.map((s) => {
    const from = s.pluggedAt ?? start;
    const to = s.unpluggedAt ?? (s.endMissed ? from : now);
    const bar = el('div', { class: `bar${s.unpluggedAt === null && !s.endMissed ? ' open' : ''}`, title: `port ${s.port}: ${time(s.pluggedAt)} → ${s.unpluggedAt === null ? (s.endMissed ? '?' : 'still plugged') : time(s.unpluggedAt)}` });
    // Positions through the CSSOM: allowed by a style-src that forbids inline style attributes.
    bar.style.left = `${((from - start) / span) * 100}%`;
    bar.style.width = `${((to - from) / span) * 100}%`;
    return bar;
  });
  return el('div', {}, el('div', { class: 'timeline', id: 'sessions' }, bars), el('div', { class: 'axis' }, el('span', {}, time(start)), el('span', {}, time(end))));
}

function eventRows(events) {
  return events.slice().reverse().map((e) => {
    const failed = e.actions.filter((a) => !a.ok);
    return el('tr', { class: failed.length ? 'failed' : '' },
      el('td', {}, String(e.id)),
      el('td', {}, time(Date.parse(e.received_at))),
      el('td', {}, e.action),
      el('td', { class: 'mono' }, e.devname ?? e.devpath),
      el('td', {}, e.rules.map((r) => r.replace(/ \(.*\)$/, '')).join(', ')),
      el('td', {}, e.actions.map((a) => el('div', { class: a.ok ? '' : 'failure' }, `${a.kind} ${a.target}${a.ok ? '' : `: ${a.error ?? 'failed'}`}`))));
  });
}

const eventTable = (events, id) => el('table', { id }, el('thead', {}, el('tr', {}, ['id', 'time', 'action', 'device', 'rules', 'actions'].map((h) => el('th', {}, h)))), el('tbody', {}, eventRows(events)));

async function deviceView(id) {
  const { device: d, last, link, sessions, events } = await api(`/api/devices/${encodeURIComponent(id)}`);
  const props = last ? Object.entries(last.properties) : [];
  show(
    el('h2', { class: 'mono' }, d.key),
    el('dl', {},
      el('dt', {}, 'state'), el('dd', { class: d.present ? 'present' : 'gone' }, d.present ? 'present' : 'gone'),
      el('dt', {}, 'devpath'), el('dd', { class: 'mono' }, d.devpath),
      el('dt', {}, 'vendor / model'), el('dd', {}, [d.vendor, d.model].filter(Boolean).join(' ') || '-'),
      el('dt', {}, 'seen'), el('dd', {}, `${time(d.first_seen)} → ${time(d.last_seen)}`),
      el('dt', {}, 'links'), el('dd', { class: 'mono' }, last?.symlinks?.join(' ') || '-'),
      el('dt', {}, 'tags'), el('dd', {}, last?.tags?.join(' ') || '-'),
      link ? [el('dt', {}, 'carrier'), el('dd', {}, `${link.carrier ? 'up' : 'down'} since ${time(link.since)}; ${link.addresses.join(' ') || 'no addresses'}`)] : null),
    el('h3', {}, 'Plug-in sessions'), sessionBars(sessions),
    el('h3', {}, `Events (newest ${events.length})`), eventTable(events, 'events'),
    el('h3', {}, 'Properties'),
    el('table', {}, el('tbody', {}, props.map(([k, v]) => el('tr', {}, el('td', { class: 'mono' }, k), el('td', { class: 'mono' }, v))))));
}

/** Reads /api/stream with fetch (so the token goes in a header), resuming after the last id seen. */
async function liveView() {
  const body = el('tbody');
  const state = el('p', { class: 'muted', id: 'live-state' }, 'connecting…');
  show(el('h2', {}, 'Live'), state, el('table', { id: 'live' }, el('thead', {}, el('tr', {}, ['id', 'time', 'action', 'device', 'rules', 'actions'].map((h) => el('th', {}, h)))), body));
  const abort = new AbortController();
  leaving = () => abort.abort();
  let cursor = sessionStorage.getItem('hotplugd-live-cursor') ?? (await api('/api/status')).history.newest;
  while (!abort.signal.aborted) {
    try {
      const res = await fetch(`/api/stream?cursor=${cursor}`, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: abort.signal });
      if (res.status === 401) throw new Unauthorized();
      state.textContent = 'live';
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = message.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (!data) continue;
          if (message.split('\n').includes('event: incident')) {
            const incident = JSON.parse(data);
            body.prepend(el('tr', { class: 'incident' }, el('td', {}, '—'), el('td', {}, time(Date.parse(incident.at))), el('td', {}, 'incident'), el('td', { colspan: '3', class: 'mono' }, `${incident.kind} ${JSON.stringify(incident.detail)}`)));
            continue;
          }
          const record = JSON.parse(data);
          cursor = record.id;
          sessionStorage.setItem('hotplugd-live-cursor', String(cursor));
          body.prepend(...eventRows([{ ...record, actions: record.actions ?? [] }]));
          while (body.childElementCount > 500) body.lastElementChild.remove();
        }
      }
    } catch (error) {
      if (error instanceof Unauthorized) return askToken();
      if (abort.signal.aborted) return;
    }
    state.textContent = 'reconnecting…';
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

async function activityView() {
  const [rates, { incidents }, status] = await Promise.all([api('/api/rates'), api('/api/incidents'), api('/api/status')]);
  const chart = el('div', { id: 'rates' });
  const metrics = status.daemon?.ruleMetrics ?? [];
  show(
    el('h2', {}, 'Events per subsystem, last 24 hours'), chart,
    el('h3', {}, 'Incidents'),
    incidents.length === 0 ? el('p', { class: 'muted' }, 'None: no overflows, gaps or replaced databases.') :
      el('table', { id: 'incidents' }, el('tbody', {}, incidents.map((i) => el('tr', {}, el('td', {}, time(Date.parse(i.at))), el('td', {}, i.kind), el('td', { class: 'mono' }, JSON.stringify(i.detail)))))),
    el('h3', {}, 'Rules'),
    status.daemon === null ? el('p', { class: 'error' }, `The daemon is not reachable: ${status.error}`) :
      el('table', { id: 'rules' }, el('thead', {}, el('tr', {}, ['rule', 'matched', 'actions', 'failed'].map((h) => el('th', {}, h)))),
        el('tbody', {}, metrics.map((m) => el('tr', { class: m.failed ? 'failed' : '' }, el('td', { class: 'mono' }, m.rule), el('td', {}, String(m.matched ?? 0)), el('td', {}, String(m.actions ?? 0)), el('td', {}, String(m.failed ?? 0)))))));
  const names = Object.keys(rates.series);
  const palette = ['#3e7bfa', '#e12d39', '#1f7a3a', '#f0b429', '#7c5e10', '#8719e0', '#0b7285', '#d9480f', '#5c940d', '#c2255c', '#495057', '#1864ab'];
  new uPlot({
    width: Math.min(main.clientWidth - 20, 1100), height: 260,
    series: [{}, ...names.map((name, i) => ({ label: name, stroke: palette[i % palette.length], width: 1.5 }))],
    axes: [{}, { label: `events per ${rates.bucketMs / 1000} s` }],
  }, [rates.times.map((t) => t / 1000), ...names.map((n) => rates.series[n])], chart);
}

async function linksView() {
  const { links } = await api('/api/sessions?links=1');
  show(el('h2', {}, 'Network links'),
    links.length === 0 ? el('p', { class: 'muted' }, 'No link events recorded.') :
      el('table', { id: 'links' }, el('thead', {}, el('tr', {}, ['interface', 'sessions', 'time up', 'flaps per hour', 'last'].map((h) => el('th', {}, h)))),
        el('tbody', {}, links.map((l) => el('tr', {}, el('td', { class: 'mono' }, l.iface), el('td', {}, String(l.sessions.length)), el('td', {}, `${Math.round(l.upMs / 1000)} s`), el('td', {}, l.flapsPerHour.toFixed(1)), el('td', {}, time(l.lastAt)))))));
}

async function boardsView() {
  const { boards } = await api('/api/boards');
  show(el('h2', {}, 'Boards'),
    boards.length === 0 ? el('p', { class: 'muted' }, 'No boards collected yet.') :
      el('table', { id: 'boards' }, el('thead', {}, el('tr', {}, ['board', 'status', 'version', 'events', 'first seen', 'last seen'].map((h) => el('th', {}, h)))),
        el('tbody', {}, boards.map((b) => el('tr', {}, el('td', { class: 'mono' }, el('a', { href: `#/board/${encodeURIComponent(b.name)}` }, b.name)), el('td', { class: b.status === 'online' ? 'present' : 'gone' }, b.status ?? '-'),
          el('td', {}, b.version ?? '-'), el('td', {}, String(b.events)), el('td', {}, time(b.first_seen)), el('td', {}, time(b.last_seen)))))));
}

async function boardView(name) {
  const { board, events } = await api(`/api/boards/${encodeURIComponent(name)}/events`);
  show(el('h2', { class: 'mono' }, board), el('h3', {}, `Events (newest ${events.length})`), eventTable(events, 'board-events'));
}

function fail(error) {
  if (error instanceof Unauthorized) return askToken();
  show(el('p', { class: 'error' }, String(error.message ?? error)));
}

async function daemonLine() {
  try {
    const status = await api('/api/status');
    document.getElementById('boards-link').hidden = !status.fleet;
    document.getElementById('daemon').textContent = status.daemon ? `daemon ${status.daemon.pid}, ${status.history.events} events recorded` : `daemon not reachable; ${status.history.events} events recorded`;
  } catch {
    // the token form says it
  }
}

function route() {
  leaving();
  leaving = () => {};
  const [, view, arg] = location.hash.split('/');
  const views = { devices: () => devicesView(), device: () => deviceView(arg), live: liveView, activity: activityView, links: linksView, boards: boardsView, board: () => boardView(decodeURIComponent(arg)) };
  (views[view] ?? views.devices)().catch(fail);
  daemonLine();
}

window.addEventListener('hashchange', route);
route();
