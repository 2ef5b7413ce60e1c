'use strict';
// The web console end to end in headless Chromium (Debian's package),
// driven by playwright-core, against the real agents and guests that
// tests/e2e/console_browser.sh started. It signs in, migrates g1 to a
// specific node through the ⋮ menu and the Migrate dialog, follows the
// progress bar and the live chart to Succeeded, aborts a migration of g2,
// shows a failed migration of g2 at the progress it reached with the
// reason, says why automatic mode has no node for g4, fits a 420 px wide
// window, shows the Nodes page and its Cordon and Drain (as an admin), and
// checks that a viewer sees Migrate but is refused. Every wait is
// Playwright's own (bounded); screenshots go to $FERRY_ARTIFACTS.
//
// Environment: FERRY_URL, FERRY_TOKEN_MIGRATOR, FERRY_TOKEN_VIEWER,
// FERRY_TOKEN_ADMIN, FERRY_ARTIFACTS, CHROMIUM (default /usr/bin/chromium).
const path = require('path');
const fs = require('fs');
const { chromium } = require('playwright-core');

const env = process.env;
const BASE = env.FERRY_URL;
const OUT = env.FERRY_ARTIFACTS;
const SHORT = 15000;      // a page reacting
const MIGRATION = 120000; // a migration under TCG on a shared 2-core machine
const t0 = Date.now();

function log(...a) {
  console.log(`[console +${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
}

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

async function shot(page, name) {
  const file = path.join(OUT, `console-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log('screenshot', file);
}

const row = (page, vm) => page.locator(`tr[data-vm="${vm}"]`);
const phase = (page, vm) => row(page, vm).locator('.mig-phase');

async function waitText(loc, re, timeout, what) {
  try {
    await loc.filter({ hasText: re }).first().waitFor({ state: 'visible', timeout });
  } catch (e) {
    const now = await loc.first().textContent().catch(() => '(absent)');
    throw new Error(`${what}: waited ${timeout} ms for ${re}, shows "${now}"`);
  }
}

async function signIn(page, token, role) {
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await waitText(page.locator('#who'), new RegExp(`^${role} on node-a$`), SHORT, 'signed-in role');
  await row(page, 'g1').waitFor();
}

async function openMenu(page, vm) {
  await page.getByRole('button', { name: `Actions for ${vm}` }).click();
  const menu = page.getByRole('menu', { name: `Actions for ${vm}` });
  await menu.waitFor();
  return menu;
}

// The page never scrolls sideways: wide tables scroll in their own box.
async function fitsWidth(page, width, what) {
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  if (w <= width) return;
  // Name the outermost elements that stick out, to say what to fix.
  const wide = await page.evaluate(limit => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > limit + 0.5 && !e.closest('.table-wrap, [hidden], dialog:not([open])'))
    .filter((e, i, all) => !all.includes(e.parentElement))
    .slice(0, 5).map(e => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${e.className} (${Math.round(e.getBoundingClientRect().right)} px)`), width);
  check(false, `${what}: the page is ${w} px wide in a ${width} px window: ${wide.join(', ')}`);
}

// Clicks a node button and waits for the request it sends; answers the
// response (the endpoint may be absent from this ferryd: 404).
async function nodeRequest(page, click, method, path) {
  const [resp] = await Promise.all([
    page.waitForResponse(r => r.request().method() === method && new URL(r.url()).pathname === path),
    click(),
  ]);
  log(`${method} ${path} sent: ${resp.status()}`);
  return resp;
}

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  const browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox'], // tests run as root, where Chromium's sandbox refuses to start
  });
  const problems = [];
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(SHORT);
    page.on('pageerror', e => problems.push('page error: ' + e.message));
    // The console must fetch nothing but its own node: anything else is
    // refused and reported.
    await ctx.route('**/*', r => {
      const u = new URL(r.request().url());
      if (u.origin !== new URL(BASE).origin) {
        problems.push('request outside ferryd: ' + u.href);
        return r.abort();
      }
      return r.continue();
    });

    // ---- sign in ------------------------------------------------------------
    await page.goto(BASE + '/');
    await page.getByRole('heading', { name: 'Sign in to ferry' }).waitFor();
    check(await page.getByLabel('API token').evaluate(e => e === document.activeElement), 'the token field has the focus');
    await shot(page, 'signin');
    await page.getByLabel('API token').fill('not-a-real-token-at-all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await waitText(page.locator('#signin-error'), /not valid/, SHORT, 'bad-token message');
    await signIn(page, env.FERRY_TOKEN_MIGRATOR, 'migrator');
    check(await page.evaluate(() => !location.href.includes('token') && !!sessionStorage.getItem('ferry.token')),
      'the token is kept in sessionStorage, not in the URL');
    log('signed in as migrator');

    // ---- the Virtual Machines page: every VM of every node -----------------------
    await waitText(row(page, 'g1').locator('.vm-node'), /^node-a$/, SHORT, 'g1 node');
    await waitText(row(page, 'g2').locator('.vm-node'), /^node-b$/, SHORT, 'g2 node (a peer of the serving node)');
    await waitText(row(page, 'g1').locator('.vm-state'), /Running/, SHORT, 'g1 state');
    await waitText(row(page, 'g1').locator('.vm-live'), /Live-migratable/, SHORT, 'g1 live-migratable');
    await waitText(row(page, 'g3').locator('.vm-live'), /CD-ROM/, SHORT, 'g3 not live-migratable, with the reason');
    await waitText(page.locator('#nodes-status'), /3 nodes: node-a, node-b, node-c$/, SHORT, 'nodes line');
    await shot(page, 'vms');

    // ---- the ⋮ menu by keyboard: Enter opens on the first item, Escape
    // closes and gives the focus back to the button.
    const kebab = page.getByRole('button', { name: 'Actions for g1' });
    await kebab.focus();
    await page.keyboard.press('Enter');
    await page.getByRole('menuitem', { name: 'Migrate' }).waitFor();
    check(await page.getByRole('menuitem', { name: 'Migrate' }).evaluate(e => e === document.activeElement),
      'the menu opens with the focus on Migrate');
    check(await kebab.getAttribute('aria-expanded') === 'true', 'aria-expanded on the open menu button');
    await page.keyboard.press('Escape');
    await page.locator('#vm-menu').waitFor({ state: 'hidden' });
    check(await kebab.evaluate(e => e === document.activeElement), 'Escape returns the focus to ⋮');

    // ---- Migrate to a specific node ------------------------------------------------------
    let menu = await openMenu(page, 'g1');
    check(await menu.getByRole('menuitem', { name: 'Abort Migration' }).count() === 0,
      'no Abort Migration while nothing migrates');
    await shot(page, 'menu');
    await menu.getByRole('menuitem', { name: 'Migrate' }).click();
    const dialog = page.getByRole('dialog', { name: 'Migrate Virtual Machine' });
    await dialog.waitFor();
    check(await dialog.getByLabel('Automatically selected node').isChecked(), 'automatic node is the default');
    await dialog.getByLabel('Specific node').check();
    const eligible = dialog.getByRole('radiogroup', { name: 'Eligible nodes' });
    await eligible.getByRole('radio', { name: /node-b/ }).waitFor();
    check(await eligible.getByRole('radio', { name: /node-c/ }).count() === 0, 'node-c is not offered');
    await dialog.getByRole('button', { name: 'Show 1 ineligible node' }).click();
    await waitText(dialog.locator('#ineligible li[data-node="node-c"]'), /network tenant \(NIC net0\) is not available/,
      SHORT, 'node-c explained');
    check(await dialog.getByRole('button', { name: 'Hide 1 ineligible node' }).getAttribute('aria-expanded') === 'true',
      'the ineligible toggle says it is expanded');
    await dialog.getByLabel('Search nodes').fill('zzz');
    await waitText(dialog.locator('#node-list-empty'), /No eligible node matches/, SHORT, 'search with no match');
    await dialog.getByLabel('Search nodes').fill('node-b');
    await eligible.getByRole('radio', { name: /node-b/ }).check();
    await shot(page, 'migrate-dialog');
    await dialog.getByRole('button', { name: 'Apply' }).click();
    await dialog.waitFor({ state: 'hidden' });
    log('migration of g1 to node-b applied');

    // The progress bar moves while the guest's memory is copied.
    await waitText(phase(page, 'g1'), /^Running$/, MIGRATION, 'g1 migration running');
    const bar = row(page, 'g1').getByRole('progressbar');
    await page.waitForFunction(() => {
      const b = document.querySelector('tr[data-vm="g1"] [role=progressbar]');
      return b && Number(b.getAttribute('aria-valuenow')) > 5;
    }, null, { timeout: MIGRATION });
    log('g1 progress', await bar.getAttribute('aria-valuetext'));
    await shot(page, 'migrating');

    // ---- details: the state block and the live chart from the event stream ----
    await row(page, 'g1').getByRole('link', { name: 'g1' }).click();
    await page.getByRole('heading', { name: 'g1', level: 1 }).waitFor();
    await page.waitForFunction(() => Number(document.getElementById('chart').dataset.events) >= 2, null,
      { timeout: MIGRATION });
    log('the chart follows the event stream');
    await waitText(page.locator('#vm-state dd[data-field="Phase"]'), /^Succeeded$/, MIGRATION, 'details phase');
    await waitText(page.locator('#vm-state dd[data-field="Target Node"]'), /^node-b$/, SHORT, 'details target node');
    await waitText(page.locator('#vm-state dd[data-field="Completed"]'), /^true$/, SHORT, 'details completed');
    await waitText(page.locator('#vm-summary dd[data-field="Node"]'), /^node-b$/, SHORT, 'details node');
    await page.waitForFunction(() => Number(document.getElementById('chart').dataset.points) >= 3, null, { timeout: SHORT });
    await waitText(page.locator('#history-rows .hist-phase'), /^Succeeded$/, SHORT, 'history');
    const events = await page.locator('#chart').getAttribute('data-events');
    await shot(page, 'details');
    log(`details: Succeeded, ${events} stream events on the chart`);

    // ---- back on the list: Succeeded and the new node -------------------------------
    await page.getByRole('link', { name: 'Virtual Machines' }).first().click();
    await waitText(phase(page, 'g1'), /^Succeeded$/, MIGRATION, 'g1 phase on the list');
    await waitText(row(page, 'g1').locator('.vm-node'), /^node-b$/, MIGRATION, 'g1 moved to node-b');
    check(await row(page, 'g1').getByRole('progressbar').getAttribute('aria-valuenow') === '100', 'the bar is full');
    await shot(page, 'vms-after');

    // ---- start another migration (automatic node) and abort it ------------------------
    menu = await openMenu(page, 'g2');
    await menu.getByRole('menuitem', { name: 'Migrate' }).click();
    await dialog.waitFor();
    await waitText(dialog.locator('#auto-hint'), /2 of 2 eligible/, SHORT, 'automatic choice hint');
    await dialog.getByRole('button', { name: 'Apply' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await waitText(phase(page, 'g2'), /^Running$/, MIGRATION, 'g2 migration running');
    menu = await openMenu(page, 'g2');
    await shot(page, 'menu-abort');
    await menu.getByRole('menuitem', { name: 'Abort Migration' }).click();
    const abort = page.getByRole('dialog', { name: 'Abort Migration' });
    await abort.waitFor();
    await shot(page, 'abort');
    await abort.getByRole('button', { name: 'Abort Migration' }).click();
    await abort.waitFor({ state: 'hidden' });
    await waitText(phase(page, 'g2'), /^Aborted$/, MIGRATION, 'g2 migration aborted');
    await waitText(row(page, 'g2').locator('.vm-node'), /^node-b$/, SHORT, 'g2 stays on node-b');
    await waitText(row(page, 'g2').locator('.vm-state'), /^Running$/, SHORT, 'g2 keeps running');
    await shot(page, 'aborted');
    log('g2: aborted, still on node-b');

    // ---- a failed migration: the progress it reached, red, Failed and why ----------
    // g2 against a completion timeout it cannot meet (16 s per GiB: 4 s).
    const failing = await page.evaluate(async () => {
      const r = await fetch('/v1/nodes/node-b/migrations', {
        method: 'POST',
        headers: { Authorization: 'Bearer ' + sessionStorage.getItem('ferry.token'), 'Content-Type': 'application/json' },
        body: JSON.stringify({ vm: 'g2', node: 'node-a', completionTimeoutSPerGiB: 16 }),
      });
      return { status: r.status, body: await r.json() };
    });
    check(failing.status === 201, 'the failing migration started: ' + JSON.stringify(failing));
    await waitText(phase(page, 'g2'), /^Failed$/, MIGRATION, 'g2 migration failed');
    const failed = await row(page, 'g2').evaluate(r => {
      const b = r.querySelector('[role=progressbar]');
      return {
        now: Number(b.getAttribute('aria-valuenow')), width: b.querySelector('.fill').style.width,
        text: r.querySelector('.vm-mig').textContent, valuetext: b.getAttribute('aria-valuetext'),
      };
    });
    log('g2 failed:', JSON.stringify(failed));
    check(failed.now < 100 && failed.width === failed.now + '%',
      'a failed migration shows the progress it reached, not a full bar: ' + JSON.stringify(failed));
    check(/completion timeout/.test(failed.text) && /Failed/.test(failed.valuetext),
      'the failed bar says Failed and why: ' + JSON.stringify(failed));
    await waitText(row(page, 'g2').locator('.vm-node'), /^node-b$/, SHORT, 'g2 stays on node-b after the failure');
    await shot(page, 'failed');

    // ---- automatic mode with no eligible node says why ------------------------------
    menu = await openMenu(page, 'g4');
    await menu.getByRole('menuitem', { name: 'Migrate' }).click();
    await dialog.waitFor();
    await waitText(dialog.locator('#auto-hint'), /No node can take this VM now/, SHORT, 'no eligible node');
    await waitText(dialog.locator('#auto-why li[data-node="node-a"]'), /node selector/, SHORT, 'node-a explained');
    await waitText(dialog.locator('#auto-why li[data-node="node-b"]'), /node selector/, SHORT, 'node-b explained');
    check(await dialog.getByRole('button', { name: 'Apply' }).isDisabled(), 'Apply is disabled with no eligible node');
    await shot(page, 'no-eligible');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    log('g4: automatic mode says why no node can take it');

    // ---- a 420 px wide window: nothing overflows the page ------------------------------
    await page.setViewportSize({ width: 420, height: 860 });
    await waitText(phase(page, 'g2'), /^Failed$/, SHORT, 'the list at 420 px');
    await fitsWidth(page, 420, 'Virtual Machines at 420 px');
    await shot(page, 'narrow-vms');
    await row(page, 'g1').getByRole('link', { name: 'g1' }).click();
    await waitText(page.locator('#vm-state dd[data-field="Phase"]'), /^Succeeded$/, SHORT, 'details at 420 px');
    await fitsWidth(page, 420, 'VM details at 420 px');
    await shot(page, 'narrow-details');
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.getByRole('link', { name: 'Virtual Machines' }).first().click();
    await row(page, 'g1').waitFor();

    // ---- the Nodes page, as an administrator -------------------------------------------
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor();
    await signIn(page, env.FERRY_TOKEN_ADMIN, 'admin');
    await page.getByRole('link', { name: 'Nodes' }).click();
    await page.getByRole('heading', { name: 'Nodes', level: 1 }).waitFor();
    const nodeRow = n => page.locator(`#node-rows tr[data-node="${n}"]`);
    for (const n of ['node-a', 'node-b', 'node-c']) {
      await waitText(nodeRow(n).locator('.node-reach'), /^Reachable$/, SHORT, `${n} reachable`);
      await waitText(nodeRow(n).locator('.node-vms'), /^\d+$/, SHORT, `${n} VM count`);
    }
    check(await page.locator('#nav-nodes').getAttribute('aria-current') === 'page', 'the Nodes link is marked current');
    await shot(page, 'nodes');
    // Cordon: the request goes out; with the endpoint, the row says so.
    const cordon = await nodeRequest(page, () => nodeRow('node-c').getByRole('button', { name: 'Cordon node-c' }).click(),
      'POST', '/v1/nodes/node-c/cordon');
    if (cordon.status() === 404) {
      await waitText(page.locator('#nodes-error'), /Cannot cordon node-c/, SHORT, 'the cordon refusal shown');
      log('NOTE: this ferryd has no cordon endpoint (404): the request was sent and the refusal shown');
    } else {
      check(cordon.ok(), 'cordon answered ' + cordon.status());
      await waitText(nodeRow('node-c').locator('.node-sched'), /Cordoned/, SHORT, 'node-c cordoned');
      await shot(page, 'nodes-cordoned');
      await nodeRequest(page, () => nodeRow('node-c').getByRole('button', { name: 'Uncordon node-c' }).click(),
        'POST', '/v1/nodes/node-c/uncordon');
      await waitText(nodeRow('node-c').locator('.node-sched'), /Schedulable/, SHORT, 'node-c uncordoned');
    }
    // Drain node-c: g3 (CD-ROM) and g4 (no node matches its selector) cannot
    // move, so the drain ends at once with both in its report.
    await nodeRow('node-c').getByRole('button', { name: 'Drain node-c' }).click();
    const drainDialog = page.getByRole('dialog', { name: 'Drain node-c' });
    await drainDialog.waitFor();
    const drain = await nodeRequest(page, () => drainDialog.getByRole('button', { name: 'Drain node-c' }).click(),
      'POST', '/v1/nodes/node-c/drain');
    if (drain.status() === 404) {
      await waitText(drainDialog.locator('#node-dialog-error'), /./, SHORT, 'the drain refusal shown');
      log('NOTE: this ferryd has no drain endpoint (404): the request was sent and the refusal shown');
      await drainDialog.getByRole('button', { name: 'Cancel' }).click();
    } else {
      check(drain.ok(), 'drain answered ' + drain.status());
      const card = page.locator('[data-drain="node-c"]');
      await waitText(card.locator('.drain-state'), /^(Completed|Failed)$/, MIGRATION, 'the drain of node-c ended');
      await waitText(card.locator('.drain-report li[data-vm="g3"]'), /CD-ROM|cdrom/i, SHORT, 'g3 in the drain report');
      await card.locator('.drain-report li[data-vm="g4"]').waitFor();
      await shot(page, 'nodes-drained');
      const un = nodeRow('node-c').getByRole('button', { name: 'Uncordon node-c' });
      if (await un.count()) await un.click();
    }
    await drainDialog.waitFor({ state: 'hidden' });
    await page.setViewportSize({ width: 420, height: 860 });
    await nodeRow('node-a').waitFor();
    await fitsWidth(page, 420, 'Nodes at 420 px');
    await shot(page, 'narrow-nodes');
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.getByRole('link', { name: 'Virtual Machines' }).first().click();
    await row(page, 'g1').waitFor();
    log('Nodes page: every node, reachable; cordon and drain requests sent');

    // ---- a viewer sees Migrate but is refused -----------------------------------------
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor();
    await signIn(page, env.FERRY_TOKEN_VIEWER, 'viewer');
    menu = await openMenu(page, 'g2');
    await menu.getByRole('menuitem', { name: 'Migrate' }).click();
    const denied = page.getByRole('alertdialog', { name: 'Not permitted' });
    await denied.waitFor();
    await waitText(denied, /role is viewer/, SHORT, 'refusal text');
    check(!(await dialog.isVisible()), 'no Migrate dialog for a viewer');
    await shot(page, 'viewer-denied');
    await page.keyboard.press('Escape');
    await denied.waitFor({ state: 'hidden' });
    // And ferryd itself refuses, whatever a page would do.
    const refused = await page.evaluate(async () => {
      const r = await fetch('/v1/nodes/node-b/migrations', {
        method: 'POST',
        headers: { Authorization: 'Bearer ' + sessionStorage.getItem('ferry.token'), 'Content-Type': 'application/json' },
        body: JSON.stringify({ vm: 'g2' }),
      });
      return { status: r.status, body: await r.json() };
    });
    check(refused.status === 403 && /role viewer may not do this/.test(refused.body.error.message),
      'ferryd refuses a viewer: ' + JSON.stringify(refused));
    log('viewer: Migrate visible, refused');
    check(problems.length === 0, problems.join('; '));
  } finally {
    await browser.close();
  }
  log('PASS');
}

main().catch(e => {
  console.error('FAIL:', e.message);
  process.exit(1);
});
