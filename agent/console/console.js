// ferry's web console: sign in with a token, the Virtual Machines page
// (every VM of every node, through this ferryd's cluster view), the ⋮
// menu with Migrate and Abort Migration, a VM's details with its
// migration state, history and a live chart fed by the event stream, and
// the Nodes page (reachability, cordon, drain and its report).
// Plain DOM, no framework; docs/console.md describes the screens.
import { api, stream, session, ApiError, enc } from './api.js';
import { RateChart } from './chart.js';

const $ = id => document.getElementById(id);
const FINAL = new Set(['Succeeded', 'Failed']);
const POLL_ACTIVE_MS = 1000;  // while something migrates: the bar moves
const POLL_IDLE_MS = 3000;

const state = {
  me: null,        // {role, node, canMigrate} from /v1/whoami
  cluster: null,   // the last /v1/cluster/vms
  rows: new Map(), // VM name -> row of the table
  timer: 0,
  detail: null,    // the open details view
  menu: null,      // {button, vm} of the open ⋮ menu
};

// ---- small helpers -----------------------------------------------------------

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k);
  return e;
}

let toastTimer = 0;
function toast(msg, kind) {
  const t = $('toast');
  t.textContent = msg;
  t.className = 'toast show' + (kind ? ' ' + kind : '');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.className = 'toast'; }, 6000);
}

const mb = b => (b / 1e6).toFixed(1) + ' MB/s';
const mib = b => (b / 1048576).toFixed(1) + ' MiB';
const ms = v => (v === undefined || v < 0 ? '—' : v >= 10000 ? (v / 1000).toFixed(1) + ' s' : v + ' ms');
const when = ts => (ts ? new Date(ts).toLocaleString() : '—');

// ---- migration phase and progress -------------------------------------------

function active(m) { return !!m && !FINAL.has(m.phase); }

function phaseLabel(m) {
  if (!m) return '';
  if (m.phase === 'Failed' && m.abortStatus === 'Succeeded') return 'Aborted';
  if (m.abortRequested && !FINAL.has(m.phase)) return 'Aborting';
  return m.phase;
}

// Data still to copy: RAM and local disks together. Before RAM pre-copy
// starts (mode "storage") its figures are 0, so the disks are all there is.
function leftBytes(m) { return (m.ramRemaining || 0) + (m.diskRemaining || 0); }
function totalBytes(m) { return (m.ramTotal || 0) + (m.diskTotal || 0); }
function dirtyBps(m) { return (m.dirtyRateBps || 0) + (m.diskDirtyRateBps || 0); }

// The share of the copy done, 0-100: 5 for reaching the copy, then how
// much of the guest's memory and disks no longer needs copying; null
// without the figures.
function copied(m) {
  const total = totalBytes(m);
  if (!total) return null;
  return Math.round(Math.min(99, Math.max(5, 5 + 94 * (1 - leftBytes(m) / total))));
}

// The last progress shown for each running migration (by id): a migration
// that ended without success may come back without its copy figures.
const lastPct = new Map();

// How far a migration that failed or was aborted got: its figures, else
// what this page last showed of it, else the bytes sent against the
// guest's memory (m.memoryMiB, from its VM; re-sent pages can make that
// overshoot, hence the cap), else 0. Never a full bar.
function reached(m) {
  const c = copied(m);
  if (c !== null) return c;
  if (lastPct.has(m.id)) return lastPct.get(m.id);
  const size = (m.memoryMiB || 0) * 1048576 + (m.diskTotal || 0);
  if (size && m.rawBytes) return Math.round(Math.min(99, 5 + 94 * Math.min(1, m.rawBytes / size)));
  return 0;
}

// How far along, 0-100: the phases before the copy are a small head start;
// while Running, the share copied; Failed (aborts included), where it
// stopped.
function percent(m) {
  const before = { Pending: 0, Scheduling: 1, Scheduled: 2, PreparingTarget: 3, TargetReady: 5 };
  if (m.phase === 'Succeeded') return 100;
  if (m.phase in before) return before[m.phase];
  if (m.phase === 'Failed') return reached(m);
  const pct = Math.max(5, copied(m) || 0);
  if (m.id) lastPct.set(m.id, pct);
  return pct;
}

function progressEl(m) {
  if (!m) return h('span', { class: 'muted' }, 'No migration');
  const label = phaseLabel(m), pct = percent(m);
  const ended = m.phase === 'Failed';
  const kind = label === 'Succeeded' ? 'ok' : label === 'Failed' ? 'bad' : label === 'Aborted' || label === 'Aborting' ? 'warn' : 'run';
  const fill = h('span', { class: 'fill' });
  fill.style.width = pct + '%';
  const route = m.sourceNode && m.targetNode ? `${m.sourceNode} → ${m.targetNode}` : '';
  const pctText = active(m) ? pct + '%' : ended ? `stopped at ${pct}%` : '';
  return h('div', { class: 'progress ' + kind },
    h('div', { class: 'progress-top' },
      h('span', { class: 'mig-phase' }, label),
      h('span', { class: 'mig-pct' }, pctText),
      h('span', { class: 'mig-route' }, route)),
    h('div', {
      class: 'bar', role: 'progressbar', 'aria-label': `Migration of ${m.vm || 'the VM'}`,
      'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(pct),
      'aria-valuetext': `${label}${pctText ? ', ' + pctText : ''}${ended && m.failureReason ? ': ' + m.failureReason : ''}`,
      title: m.failureReason || '',
    }, fill),
    ended && m.failureReason ? h('div', { class: 'mig-reason' }, m.failureReason) : null);
}

// ---- sign in / out -------------------------------------------------------------

function show(view) {
  for (const id of ['signin-view', 'vms-view', 'vm-view', 'nodes-view']) $(id).hidden = id !== view;
  const signedIn = view !== 'signin-view';
  $('nav').hidden = !signedIn;
  $('session').hidden = !signedIn;
  const page = view === 'nodes-view' ? 'nav-nodes' : 'nav-vms';
  for (const id of ['nav-vms', 'nav-nodes']) {
    if (id === page) $(id).setAttribute('aria-current', 'page');
    else $(id).removeAttribute('aria-current');
  }
}

async function whoami() {
  state.me = await api('GET', '/v1/whoami');
  $('who').textContent = `${state.me.role} on ${state.me.node}`;
}

async function signIn(ev) {
  ev.preventDefault();
  const token = $('token').value.trim();
  $('signin-error').textContent = '';
  if (!token) {
    $('signin-error').textContent = 'Enter an API token.';
    $('token').focus();
    return;
  }
  session.set(token);
  try {
    await whoami();
  } catch (e) {
    session.clear();
    $('signin-error').textContent = e.status === 401 ? 'That token is not valid on this node.' : e.message;
    $('token').select();
    return;
  }
  $('token').value = '';
  if (!location.hash || location.hash === '#') history.replaceState(null, '', '#/vms');
  route();
}

function signOut(msg) {
  session.clear();
  state.me = null;
  stopDetail();
  clearTimeout(state.timer);
  closeMenu(false);
  state.rows.clear();
  $('vm-rows').replaceChildren();
  show('signin-view');
  $('signin-error').textContent = msg || '';
  $('token').focus();
}

// Any call answered 401 means the token went away (ferryd restarted with
// other tokens): back to the sign-in screen, with the reason.
function handleError(e) {
  if (e instanceof ApiError && e.status === 401) {
    signOut('Your token is no longer accepted: sign in again.');
    return true;
  }
  return false;
}

// ---- the Virtual Machines page ----------------------------------------------------

function makeRow(name) {
  const r = {};
  r.link = h('a', { href: '#/vm/' + enc(name), class: 'vm-name' }, name);
  r.node = h('td', { class: 'vm-node' });
  r.state = h('td', { class: 'vm-state' });
  r.live = h('td', { class: 'vm-live' });
  r.mig = h('td', { class: 'vm-mig' });
  r.button = h('button', {
    type: 'button', class: 'kebab', 'aria-haspopup': 'menu', 'aria-expanded': 'false',
    'aria-label': 'Actions for ' + name,
  }, '⋮');
  r.button.addEventListener('click', () => toggleMenu(r.button, name));
  r.button.addEventListener('keydown', ev => {
    if (ev.key === 'ArrowDown') { ev.preventDefault(); openMenu(r.button, name); }
  });
  r.tr = h('tr', { 'data-vm': name },
    h('th', { scope: 'row' }, r.link), r.node, r.state, r.live, r.mig, h('td', { class: 'actions' }, r.button));
  return r;
}

function updateRow(r, vm) {
  r.node.textContent = vm.node;
  r.state.replaceChildren(h('span', { class: 'badge ' + vm.state.toLowerCase() }, vm.state));
  // Two nodes each run a guest of this name: both rows say so.
  if (vm.conflict)
    r.state.append(' ', h('span', { class: 'badge conflict', title: 'name conflict' },
      `Conflict: also on ${(vm.conflictWith || []).join(', ')}`));
  r.live.replaceChildren(vm.liveMigratable === false
    ? h('span', { class: 'no' }, h('span', { class: 'sr-only' }, 'Not live-migratable: '), vm.notMigratableReason || 'not live-migratable')
    : vm.liveMigratable ? h('span', { class: 'yes' }, 'Live-migratable') : h('span', { class: 'muted' }, '—'));
  r.mig.replaceChildren(progressEl(vm.migration && Object.assign({ vm: vm.name, memoryMiB: vm.memoryMiB }, vm.migration)));
}

function renderList() {
  const cl = state.cluster;
  const q = $('vm-filter').value.trim().toLowerCase();
  const vms = cl.vms.slice().sort((a, b) => a.name.localeCompare(b.name));
  const body = $('vm-rows');
  const seen = new Set();
  let shown = 0, prev = null;
  for (const vm of vms) {
    // A name in conflict has a row per node.
    const key = vm.conflict ? `${vm.name}@${vm.node}` : vm.name;
    seen.add(key);
    let r = state.rows.get(key);
    if (!r) {
      r = makeRow(vm.name);
      state.rows.set(key, r);
    }
    updateRow(r, vm);
    const match = !q || [vm.name, vm.node, vm.state].some(s => s.toLowerCase().includes(q));
    r.tr.hidden = !match;
    shown += match;
    // Move a row only when the order changed: moving the row that holds
    // the keyboard focus would drop it.
    const want = prev ? prev.nextSibling : body.firstChild;
    if (want !== r.tr) body.insertBefore(r.tr, want);
    prev = r.tr;
  }
  for (const [name, r] of state.rows) {
    if (!seen.has(name)) {
      r.tr.remove();
      state.rows.delete(name);
    }
  }
  $('vms-empty').hidden = shown > 0;
  $('vms-empty').textContent = vms.length ? 'No virtual machine matches the filter.' : 'No virtual machines.';
  const down = cl.nodes.filter(n => !n.reachable);
  $('nodes-status').textContent = `${cl.nodes.length} nodes: ${cl.nodes.map(n => n.name).join(', ')}` +
    (down.length ? ` — unreachable: ${down.map(n => `${n.name} (${n.reason})`).join('; ')}` : '');
  $('nodes-status').classList.toggle('error', down.length > 0);
}

async function refreshCluster() {
  state.cluster = await api('GET', '/v1/cluster/vms');
  return state.cluster;
}

function findVm(name) {
  return state.cluster && state.cluster.vms.find(v => v.name === name);
}

function schedule(fn, msDelay) {
  clearTimeout(state.timer);
  state.timer = setTimeout(fn, msDelay);
}

async function pollList() {
  try {
    await refreshCluster();
    renderList();
  } catch (e) {
    if (handleError(e)) return;
    $('nodes-status').textContent = 'Cannot load the VMs: ' + e.message;
    $('nodes-status').classList.add('error');
  }
  if ($('vms-view').hidden) return;
  const busy = state.cluster && state.cluster.vms.some(v => active(v.migration));
  schedule(pollList, busy ? POLL_ACTIVE_MS : POLL_IDLE_MS);
}

// ---- the ⋮ menu ----------------------------------------------------------------

function menuItems(name) {
  const vm = findVm(name);
  const items = [{ label: 'Migrate', act: opener => openMigrate(name, opener) }];
  if (vm && active(vm.migration) && vm.state === 'Migrating')
    items.push({ label: 'Abort Migration', act: opener => openAbort(name, opener) });
  if ($('vm-view').hidden) items.push({ label: 'View details', act: () => { location.hash = '#/vm/' + enc(name); } });
  return items;
}

function openMenu(button, name) {
  closeMenu(false);
  const menu = $('vm-menu');
  const items = menuItems(name).map(it => {
    const b = h('button', { type: 'button', role: 'menuitem', tabindex: '-1' }, it.label);
    b.addEventListener('click', () => { closeMenu(false); it.act(button); });
    return h('li', { role: 'none' }, b);
  });
  menu.replaceChildren(...items);
  menu.setAttribute('aria-label', 'Actions for ' + name);
  const box = button.getBoundingClientRect();
  menu.hidden = false;
  const left = Math.max(8, box.right + window.scrollX - menu.offsetWidth);
  menu.style.left = left + 'px';
  menu.style.top = box.bottom + window.scrollY + 4 + 'px';
  button.setAttribute('aria-expanded', 'true');
  button.setAttribute('aria-controls', 'vm-menu');
  state.menu = { button, name };
  menu.querySelector('[role=menuitem]').focus();
}

function closeMenu(refocus) {
  if (!state.menu) return;
  $('vm-menu').hidden = true;
  state.menu.button.setAttribute('aria-expanded', 'false');
  if (refocus) state.menu.button.focus();
  state.menu = null;
}

function toggleMenu(button, name) {
  if (state.menu && state.menu.button === button) closeMenu(true);
  else openMenu(button, name);
}

function menuKeys(ev) {
  const items = [...$('vm-menu').querySelectorAll('[role=menuitem]')];
  const i = items.indexOf(document.activeElement);
  const go = j => { ev.preventDefault(); items[(j + items.length) % items.length].focus(); };
  if (ev.key === 'ArrowDown') go(i + 1);
  else if (ev.key === 'ArrowUp') go(i - 1);
  else if (ev.key === 'Home') go(0);
  else if (ev.key === 'End') go(items.length - 1);
  else if (ev.key === 'Escape') { ev.preventDefault(); closeMenu(true); }
  else if (ev.key === 'Tab') closeMenu(false);
}

// ---- dialogs ---------------------------------------------------------------------

function openDialog(d, opener, focus) {
  d.opener = opener;
  d.showModal();
  (focus || d.querySelector('input, button')).focus();
}

function closeDialog(d) {
  if (d.open) d.close();
}

function restoreFocus(d) {
  if (d.opener && document.contains(d.opener)) d.opener.focus();
}

function denied(what, opener) {
  $('denied-text').textContent =
    `Your token's role is ${state.me.role}: it can see virtual machines and migrations but cannot ${what}. ` +
    'Starting or aborting a migration needs the migrate role (migrator) or an administrator.';
  openDialog($('denied-dialog'), opener, $('denied-ok'));
}

// ferryd refused (403): its own sentence says which role it takes.
function refused(message, opener) {
  $('denied-text').textContent = message;
  openDialog($('denied-dialog'), opener, $('denied-ok'));
}

const mig = { vm: null, candidates: [], showIneligible: false };

function targetMode() {
  return document.querySelector('input[name=target-mode]:checked').value;
}

function renderCandidates() {
  const q = $('node-search').value.trim().toLowerCase();
  const eligible = mig.candidates.filter(c => c.eligible);
  const ineligible = mig.candidates.filter(c => !c.eligible);
  const list = $('node-list');
  const chosen = list.querySelector('input:checked');
  const keep = chosen ? chosen.value : null;
  const match = eligible.filter(c => c.name.toLowerCase().includes(q));
  list.replaceChildren(...match.map(c => h('label', { class: 'node' },
    h('input', { type: 'radio', name: 'target-node', value: c.name, checked: c.name === keep }),
    h('span', { class: 'node-name' }, c.name),
    h('span', { class: 'node-facts' }, `${(c.freeMemoryMiB / 1024).toFixed(1)} GiB free, ${c.migrationsInFlight || 0} migrating`))));
  $('node-list-empty').hidden = match.length > 0;
  $('node-list-empty').textContent = eligible.length ? 'No eligible node matches the search.' : 'No node can take this VM.';
  const t = $('toggle-ineligible');
  t.hidden = ineligible.length === 0;
  t.textContent = (mig.showIneligible ? 'Hide ' : 'Show ') + ineligible.length +
    (ineligible.length === 1 ? ' ineligible node' : ' ineligible nodes');
  t.setAttribute('aria-expanded', String(mig.showIneligible));
  $('ineligible').hidden = !mig.showIneligible;
  $('ineligible').replaceChildren(...ineligible.map(c => h('li', { 'data-node': c.name },
    h('span', { class: 'node-name' }, c.name), ': ', h('span', { class: 'why' }, c.reason || 'not eligible'))));
}

function renderMode() {
  const specific = targetMode() === 'specific';
  const eligible = mig.candidates.filter(c => c.eligible);
  $('specific').hidden = !specific;
  $('auto-hint').hidden = specific;
  // With no eligible node, automatic mode says why: each node's reason.
  const why = !mig.loading && !mig.blocked && !eligible.length ? mig.candidates : [];
  $('auto-why').hidden = specific || !why.length;
  $('auto-why').replaceChildren(...why.map(c => h('li', { 'data-node': c.name },
    h('span', { class: 'node-name' }, c.name), ': ', h('span', { class: 'why' }, c.reason || 'not eligible'))));
  $('auto-hint').textContent = mig.loading ? 'Checking which nodes can take it…'
    : mig.blocked ? ''
      : eligible.length ? `ferryd picks the eligible node with the most free memory (${eligible.length} of ${mig.candidates.length} eligible).`
        : mig.candidates.length ? `No node can take this VM now; ${mig.candidates.length === 1 ? 'the node says' : 'each node says'} why:`
          : mig.failed ? '' : 'No node can take this VM: this node has no peers.';
}

async function openMigrate(name, opener) {
  const vm = findVm(name);
  if (!state.me.canMigrate) return denied('start a migration', opener);
  if (!vm) return toast(`${name} is gone`, 'bad');
  const d = $('migrate-dialog');
  mig.vm = vm;
  mig.candidates = [];
  mig.showIneligible = false;
  mig.loading = true;
  mig.blocked = false;
  mig.failed = false;
  $('migrate-form').reset();
  $('migrate-sub').textContent = `Move ${vm.name} from ${vm.node} to a different node; it keeps running. ` +
    'The nodes offered follow its node selector, the networks its NICs need, its CPU model and memory.';
  $('migrate-error').textContent = '';
  $('migrate-apply').disabled = true;
  renderCandidates();
  renderMode();
  openDialog(d, opener, d.querySelector('input[name=target-mode]'));
  if (vm.state !== 'Running' || vm.liveMigratable === false) {
    mig.loading = false;
    mig.blocked = true;
    renderMode();
    $('migrate-error').textContent = vm.liveMigratable === false
      ? `${vm.name} is not live-migratable: ${vm.notMigratableReason}`
      : `${vm.name} is ${vm.state}; only a Running VM can be migrated.`;
    return;
  }
  try {
    mig.candidates = await api('GET', `/v1/nodes/${enc(vm.node)}/vms/${enc(vm.name)}/candidates`);
  } catch (e) {
    if (handleError(e)) return;
    $('migrate-error').textContent = 'Cannot list the nodes: ' + e.message;
    mig.failed = true;
  }
  mig.loading = false;
  if (mig.vm !== vm) return;
  renderCandidates();
  renderMode();
  $('migrate-apply').disabled = !mig.candidates.some(c => c.eligible);
}

async function applyMigrate(ev) {
  ev.preventDefault();
  const vm = mig.vm;
  const body = { vm: vm.name };
  if (targetMode() === 'specific') {
    const chosen = $('node-list').querySelector('input:checked');
    if (!chosen) {
      $('migrate-error').textContent = 'Choose a node from the list.';
      ($('node-list').querySelector('input') || $('node-search')).focus();
      return;
    }
    body.node = chosen.value;
  }
  $('migrate-apply').disabled = true;
  $('migrate-error').textContent = '';
  try {
    const m = await api('POST', `/v1/nodes/${enc(vm.node)}/migrations`, body);
    closeDialog($('migrate-dialog'));
    toast(`Migrating ${vm.name} from ${m.sourceNode} to ${m.targetNode}.`);
    kick();
  } catch (e) {
    if (handleError(e)) return;
    $('migrate-error').textContent = e.status === 403 ? 'Not permitted: ' + e.message : e.message;
    $('migrate-apply').disabled = false;
  }
}

function openAbort(name, opener) {
  const vm = findVm(name);
  if (!state.me.canMigrate) return denied('abort a migration', opener);
  if (!vm || !vm.migration) return;
  $('abort-dialog').vm = vm;
  $('abort-text').textContent = `Stop migrating ${vm.name} to ${vm.migration.targetNode}? ` +
    `It stays on ${vm.node} and keeps running there.`;
  $('abort-error').textContent = '';
  $('abort-confirm').disabled = false;
  openDialog($('abort-dialog'), opener, $('abort-keep'));
}

async function applyAbort(ev) {
  ev.preventDefault();
  const vm = $('abort-dialog').vm;
  $('abort-confirm').disabled = true;
  try {
    await api('DELETE', `/v1/nodes/${enc(vm.node)}/migrations/${enc(vm.name)}`);
    closeDialog($('abort-dialog'));
    toast(`Aborting the migration of ${vm.name}; it stays on ${vm.node}.`);
    kick();
  } catch (e) {
    if (handleError(e)) return;
    $('abort-error').textContent = e.message;
    $('abort-confirm').disabled = false;
  }
}

// Refresh now, whichever page is open (after an action).
function kick() {
  if (!$('vms-view').hidden) pollList();
  else if (!$('nodes-view').hidden) pollNodes();
  else if (state.detail) pollDetail();
}

// ---- a VM's details ------------------------------------------------------------------

function fields(dl, pairs) {
  dl.replaceChildren(...pairs.filter(p => p).flatMap(([k, v]) => [h('dt', null, k), h('dd', { 'data-field': k }, v)]));
}

function renderMigState(m) {
  if (!m) {
    fields($('vm-state'), [['Migration', 'none yet']]);
    return;
  }
  const yes = v => (v ? 'true' : 'false');
  const live = active(m);
  fields($('vm-state'), [
    ['Completed', yes(m.completed)],
    m.endTimestamp ? ['End Timestamp', m.endTimestamp] : null,
    ['Migration UID', m.id],
    ['Mode', m.mode],
    ['Phase', phaseLabel(m)],
    ['Source Node', m.sourceNode],
    ['Start Timestamp', m.startTimestamp],
    ['Target Node', m.targetNode],
    ['Target Node Address', m.targetNodeAddress],
    ['Target Node Domain Detected', yes(m.completed)],
    m.failed ? ['Failure Reason', m.failureReason] : null,
    m.abortRequested ? ['Abort Status', m.abortStatus] : null,
    ['Total Time', ms(m.totalMs)],
    ['Guest Pause', ms(m.pauseMs)],
    live ? ['Remaining', mib(leftBytes(m))] : null,
    live ? ['Dirty Rate', mb(dirtyBps(m))] : null,
    live ? ['Copy Rate', mb(m.copyRateBps)] : null,
    live ? ['Expected Pause', ms(m.expectedPauseMs)] : null,
    live ? ['Converging', yes(m.converging)] : null,
    m.disks ? ['Disks Copied', `${m.disks} (${mib(m.diskTotal)})`] : null,
    m.disks ? ['Disk Transferred', mib(m.diskTransferred)] : null,
    m.disks && live ? ['Disk Remaining', mib(m.diskRemaining)] : null,
    m.disks ? ['Storage Copy Mode', m.storageCopyMode] : null,
  ]);
}

function renderSummary(vm) {
  fields($('vm-summary'), [
    ['Node', vm.node],
    ['State', h('span', { class: 'badge ' + vm.state.toLowerCase() }, vm.state)],
    ['LiveMigratable', vm.liveMigratable === false ? 'False' : vm.liveMigratable ? 'True' : 'Unknown'],
    vm.liveMigratable === false ? ['Reason', vm.notMigratableReason] : null,
    ['Migration Method', 'LiveMigration'],
    vm.memoryMiB ? ['Memory', vm.memoryMiB + ' MiB'] : null,
  ]);
}

function renderHistory(hist) {
  $('history-rows').replaceChildren(...hist.map(m => h('tr', { 'data-mig': m.id },
    h('td', null, when(m.startTimestamp)), h('td', { class: 'hist-phase' }, phaseLabel(m)),
    h('td', null, `${m.sourceNode} → ${m.targetNode}`), h('td', null, m.mode),
    h('td', null, ms(m.totalMs)), h('td', null, ms(m.pauseMs)), h('td', null, m.failureReason || ''))));
  $('history-empty').hidden = hist.length > 0;
}

const toPoint = s => ({ t: s.tMs / 1000, dirty: s.dirtyBps, copy: s.copyBps, remaining: s.remaining });

async function loadSamples(d, m) {
  try {
    const s = await api('GET', `/v1/nodes/${enc(m.sourceNode)}/migrations/${enc(m.id)}/samples`);
    if (state.detail === d && d.migId === m.id) d.chart.set(s.map(toPoint), 'samples');
    return s;
  } catch (e) {
    handleError(e);
    return [];
  }
}

// The live chart: the source node's event stream (relayed by this ferryd
// when the source is a peer), one point per event, until the migration
// ends; then the recorded samples replace it, being the exact series.
async function follow(d, m) {
  d.streaming = m.id;
  const done = await loadSamples(d, m);
  if (state.detail !== d || d.migId !== m.id) {
    if (d.streaming === m.id) d.streaming = null;
    return;
  }
  const base = done.length ? done[done.length - 1].tMs / 1000 : 0;
  const t0 = performance.now();
  d.abort = new AbortController();
  try {
    await stream(`/v1/nodes/${enc(m.sourceNode)}/migrations/${enc(m.id)}/events`, ev => {
      if (state.detail !== d) return;
      d.chart.add({ t: base + (performance.now() - t0) / 1000, dirty: dirtyBps(ev), copy: ev.copyRateBps, remaining: leftBytes(ev) });
      renderMigState(ev);
      $('vm-progress').replaceChildren(progressEl(ev));
    }, d.abort.signal);
  } catch (e) {
    if (e.name === 'AbortError') return;
    handleError(e);
  }
  if (state.detail !== d) return;
  d.streaming = null;
  pollDetail();
}

async function pollDetail() {
  const d = state.detail;
  if (!d) return;
  clearTimeout(state.timer);
  try {
    const [, hist] = await Promise.all([refreshCluster(), api('GET', `/v1/cluster/migrations?vm=${enc(d.name)}`)]);
    if (state.detail !== d) return;
    const vm = findVm(d.name);
    $('vm-missing').hidden = !!vm;
    $('vm-missing').textContent = vm ? '' : `No node knows a VM named ${d.name}.`;
    if (vm) renderSummary(vm);
    const m = hist[0] && Object.assign({ memoryMiB: vm && vm.memoryMiB }, hist[0]);
    renderHistory(hist);
    if (!d.streaming) {
      renderMigState(m);
      $('vm-progress').replaceChildren(progressEl(m));
    }
    if (m && m.id !== d.migId) {
      d.migId = m.id;
      if (d.abort) d.abort.abort();
      d.streaming = null;
      if (active(m)) follow(d, m);
      else loadSamples(d, m);
    } else if (m && active(m) && !d.streaming) {
      follow(d, m);
    } else if (m && !active(m) && d.streamed !== m.id && d.chart.source === 'events') {
      d.streamed = m.id; // ended while we followed: the exact record
      loadSamples(d, m);
    }
  } catch (e) {
    if (handleError(e)) return;
    $('vm-missing').hidden = false;
    $('vm-missing').textContent = 'Cannot load the VM: ' + e.message;
  }
  if (state.detail === d) state.timer = setTimeout(pollDetail, d.streaming ? POLL_IDLE_MS : 2000);
}

function stopDetail() {
  const d = state.detail;
  if (d && d.abort) d.abort.abort();
  state.detail = null;
}

function showDetail(name) {
  stopDetail();
  show('vm-view');
  $('vm-title').textContent = name;
  $('vm-crumb').textContent = name;
  $('vm-actions').setAttribute('aria-label', 'Actions for ' + name);
  $('vm-summary').replaceChildren();
  $('vm-state').replaceChildren();
  $('vm-progress').replaceChildren();
  $('history-rows').replaceChildren();
  state.detail = { name, chart: new RateChart($('chart')), migId: null, abort: null, streaming: null };
  pollDetail();
}

// ---- the Nodes page ------------------------------------------------------------------

const DRAIN_ACTIVE = new Set(['Running']);
const nodeView = { list: [], drains: new Map(), fallback: false, busy: new Set() };

// Every node: GET /v1/cluster/nodes; a ferryd without it (404) gives the
// nodes of its cluster view, without address, cordon state or version.
async function loadNodes() {
  try {
    nodeView.list = await api('GET', '/v1/cluster/nodes');
    nodeView.fallback = false;
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
    const cl = await refreshCluster();
    nodeView.list = cl.nodes.map(n => Object.assign({}, n, {
      vms: cl.vms.filter(v => v.node === n.name && v.state !== 'Departed').length,
    }));
    nodeView.fallback = true;
  }
  // Each node's drain, if it had one (404: none, or a ferryd without drain).
  await Promise.all(nodeView.list.map(async n => {
    try {
      nodeView.drains.set(n.name, await api('GET', `/v1/nodes/${enc(n.name)}/drain`));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) throw e;
      nodeView.drains.delete(n.name);
    }
  }));
}

const count = v => (Array.isArray(v) ? v.length : v === undefined || v === null ? '—' : String(v));

function nodeRow(n) {
  const drain = nodeView.drains.get(n.name);
  const draining = !!drain && DRAIN_ACTIVE.has(drain.state);
  const busy = nodeView.busy.has(n.name);
  const act = (label, fn, extra) => h('button', Object.assign({
    type: 'button', disabled: busy, 'data-action': label.toLowerCase().replace(/ /g, '-'),
    'aria-label': `${label} ${n.name}`, onclick: ev => fn(n.name, ev.currentTarget),
  }, extra || {}), label);
  return h('tr', { 'data-node': n.name },
    h('th', { scope: 'row' }, n.name),
    h('td', { class: 'node-address' }, n.address || '—'),
    h('td', { class: 'node-reach' }, n.reachable
      ? h('span', { class: 'yes' }, 'Reachable')
      : h('span', { class: 'no' }, 'Unreachable' + (n.reason ? ': ' + n.reason : ''))),
    h('td', { class: 'node-sched' }, n.cordoned === true ? h('span', { class: 'badge paused' }, 'Cordoned')
      : n.cordoned === false ? h('span', { class: 'badge running' }, 'Schedulable') : h('span', { class: 'muted' }, '—')),
    h('td', { class: 'node-vms' }, count(n.vms)),
    h('td', { class: 'node-version' }, n.version || '—'),
    h('td', { class: 'node-actions' },
      n.cordoned === true ? act('Uncordon', (name, b) => nodeCall(name, 'uncordon', b))
        : act('Cordon', (name, b) => nodeCall(name, 'cordon', b)),
      draining ? act('Stop drain', confirmStopDrain) : act('Drain', confirmDrain)));
}

function drainCard(node, d) {
  const vms = d.vms || [], report = d.report || [];
  return h('section', { class: 'card drain', 'data-drain': node, 'aria-labelledby': 'drain-' + node },
    h('h2', { id: 'drain-' + node }, `Drain of ${node}: `, h('span', { class: 'drain-state' }, d.state || '—')),
    h('dl', { class: 'fields' },
      h('dt', null, 'Started'), h('dd', null, when(d.started)),
      h('dt', null, 'Ended'), h('dd', null, when(d.ended))),
    vms.length ? h('div', { class: 'table-wrap', role: 'region', 'aria-label': `VMs of the drain of ${node}`, tabindex: '0' },
      h('table', { class: 'grid drain-vms' },
        h('thead', null, h('tr', null, ...['VM', 'State', 'Place', 'Target', 'Attempts', 'Reason']
          .map(t => h('th', { scope: 'col' }, t)))),
        h('tbody', null, ...vms.map(v => h('tr', { 'data-vm': v.vm },
          h('th', { scope: 'row' }, v.vm), h('td', { class: 'drain-vm-state' }, v.state || ''),
          h('td', null, v.place === undefined || v.place === null ? '' : String(v.place)),
          h('td', null, v.target || ''), h('td', null, v.attempts === undefined ? '' : String(v.attempts)),
          h('td', { class: 'why' }, v.reason || '')))))) : null,
    h('h3', null, 'Report'),
    report.length
      ? h('ul', { class: 'drain-report' }, ...report.map(r => h('li', { 'data-vm': r.vm },
        h('span', { class: 'node-name' }, r.vm), ': ', h('span', { class: 'why' }, r.reason || 'could not move'))))
      : h('p', { class: 'muted drain-report-empty' }, DRAIN_ACTIVE.has(d.state) ? 'Still draining.'
        : d.state === 'Completed' ? 'Every VM moved.' : 'No VM reported.'));
}

function renderNodes() {
  const list = nodeView.list.slice().sort((a, b) => a.name.localeCompare(b.name));
  // The rows are rebuilt: the focused button gets the focus back.
  const f = document.activeElement;
  const had = f && f.closest && f.closest('#node-rows tr') && f.dataset.action
    ? { node: f.closest('tr').dataset.node, action: f.dataset.action } : null;
  $('node-rows').replaceChildren(...list.map(nodeRow));
  if (had) {
    const row = [...$('node-rows').rows].find(r => r.dataset.node === had.node);
    const b = row && (row.querySelector(`[data-action="${had.action}"]`) || row.querySelector('button'));
    if (b) b.focus();
  }
  $('nodes-note').textContent = nodeView.fallback
    ? 'This ferryd does not report cordon state, addresses or versions: shown as —.' : '';
  $('drains').replaceChildren(...list.filter(n => nodeView.drains.has(n.name))
    .map(n => drainCard(n.name, nodeView.drains.get(n.name))));
}

async function pollNodes() {
  clearTimeout(state.timer);
  try {
    await loadNodes();
    if ($('nodes-view').hidden) return;
    renderNodes();
  } catch (e) {
    if (handleError(e)) return;
    $('nodes-error').textContent = 'Cannot load the nodes: ' + e.message;
  }
  if ($('nodes-view').hidden) return;
  const running = [...nodeView.drains.values()].some(d => DRAIN_ACTIVE.has(d.state));
  schedule(pollNodes, running ? POLL_ACTIVE_MS : POLL_IDLE_MS);
}

// POST /v1/nodes/NODE/{cordon,uncordon,drain} or DELETE .../drain.
async function nodeAction(node, method, what) {
  nodeView.busy.add(node);
  renderNodes();
  try {
    await api(method, `/v1/nodes/${enc(node)}/${what}`);
  } finally {
    nodeView.busy.delete(node);
  }
}

async function nodeCall(node, what, opener) {
  $('nodes-error').textContent = '';
  try {
    await nodeAction(node, 'POST', what);
    toast(what === 'cordon' ? `${node} cordoned: no new VMs or inbound migrations.` : `${node} uncordoned.`);
  } catch (e) {
    if (handleError(e)) return;
    if (e.status === 403) refused(e.message, opener);
    else $('nodes-error').textContent = `Cannot ${what} ${node}: ${e.message}`;
  }
  pollNodes();
}

const nodeDialog = { run: null };

function confirmNode(opener, title, text, confirm, run) {
  $('node-dialog-title').textContent = title;
  $('node-dialog-text').textContent = text;
  $('node-dialog-confirm').textContent = confirm;
  $('node-dialog-confirm').disabled = false;
  $('node-dialog-error').textContent = '';
  nodeDialog.run = run;
  openDialog($('node-dialog'), opener, $('node-dialog-cancel'));
}

async function applyNodeDialog(ev) {
  ev.preventDefault();
  $('node-dialog-confirm').disabled = true;
  try {
    await nodeDialog.run();
    closeDialog($('node-dialog'));
  } catch (e) {
    if (handleError(e)) return;
    $('node-dialog-error').textContent = e.status === 403 ? 'Not permitted: ' + e.message : e.message;
    $('node-dialog-confirm').disabled = false;
  }
  pollNodes();
}

function confirmDrain(node, opener) {
  confirmNode(opener, `Drain ${node}`,
    `Cordon ${node} and live-migrate every VM off it, within the migration limits. ` +
    'A VM that cannot move is retried on another node a few times, then listed in the report with the reason.',
    `Drain ${node}`, async () => {
      await nodeAction(node, 'POST', 'drain');
      toast(`Draining ${node}.`);
    });
}

function confirmStopDrain(node, opener) {
  confirmNode(opener, `Stop draining ${node}`,
    `No further VM leaves ${node}; migrations under way end first, so nothing is left half-done. ${node} stays cordoned.`,
    'Stop drain', async () => {
      await nodeAction(node, 'DELETE', 'drain');
      toast(`Stopping the drain of ${node}.`);
    });
}

function showNodes() {
  stopDetail();
  show('nodes-view');
  document.title = 'Nodes · ferry console';
  $('nodes-error').textContent = '';
  pollNodes();
}

// ---- routing ---------------------------------------------------------------------------

function route() {
  if (!state.me) return;
  closeMenu(false);
  const m = location.hash.match(/^#\/vm\/(.+)$/);
  if (location.hash === '#/nodes') {
    showNodes();
  } else if (m) {
    showDetail(decodeURIComponent(m[1]));
    document.title = decodeURIComponent(m[1]) + ' · ferry console';
  } else {
    stopDetail();
    show('vms-view');
    document.title = 'Virtual Machines · ferry console';
    pollList();
  }
  $('main').focus({ preventScroll: true });
}

async function start() {
  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', () => signOut(''));
  $('vm-filter').addEventListener('input', () => state.cluster && renderList());
  $('vm-menu').addEventListener('keydown', menuKeys);
  $('vm-actions').addEventListener('click', () => state.detail && toggleMenu($('vm-actions'), state.detail.name));
  $('vm-actions').addEventListener('keydown', ev => {
    if (ev.key === 'ArrowDown' && state.detail) { ev.preventDefault(); openMenu($('vm-actions'), state.detail.name); }
  });
  document.addEventListener('click', ev => {
    if (state.menu && !$('vm-menu').contains(ev.target) && ev.target !== state.menu.button) closeMenu(false);
  });
  document.querySelectorAll('input[name=target-mode]').forEach(r => r.addEventListener('change', () => {
    renderMode();
    if (targetMode() === 'specific') $('node-search').focus();
  }));
  $('node-search').addEventListener('input', renderCandidates);
  $('toggle-ineligible').addEventListener('click', () => { mig.showIneligible = !mig.showIneligible; renderCandidates(); });
  $('migrate-form').addEventListener('submit', applyMigrate);
  $('migrate-cancel').addEventListener('click', () => closeDialog($('migrate-dialog')));
  $('abort-dialog').querySelector('form').addEventListener('submit', applyAbort);
  $('abort-keep').addEventListener('click', () => closeDialog($('abort-dialog')));
  $('node-dialog').querySelector('form').addEventListener('submit', applyNodeDialog);
  $('node-dialog-cancel').addEventListener('click', () => closeDialog($('node-dialog')));
  for (const id of ['migrate-dialog', 'abort-dialog', 'denied-dialog', 'node-dialog'])
    $(id).addEventListener('close', () => restoreFocus($(id)));
  window.addEventListener('hashchange', route);

  if (session.token) {
    try {
      await whoami();
      route();
      return;
    } catch (e) {
      session.clear();
    }
  }
  show('signin-view');
  $('token').focus();
}

start();
