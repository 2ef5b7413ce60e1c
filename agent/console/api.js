// ferryd's REST API as the console uses it. The token lives in
// sessionStorage (gone with the tab) and travels only in the Authorization
// header, never in a URL: the event stream is read with fetch() for that
// reason, since EventSource cannot send headers.
const KEY = 'ferry.token';

export const session = {
  get token() { return sessionStorage.getItem(KEY); },
  set(token) { sessionStorage.setItem(KEY, token); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra) {
  return Object.assign({ Authorization: 'Bearer ' + (session.token || '') }, extra);
}

async function failure(r) {
  let e = null;
  try { e = (await r.json()).error; } catch (_) { /* not JSON */ }
  return new ApiError(r.status, e ? e.code : 'http', e ? e.message : r.status + ' ' + r.statusText);
}

export async function api(method, path, body) {
  const init = { method, headers: headers(body ? { 'Content-Type': 'application/json' } : {}), cache: 'no-store' };
  if (body) init.body = JSON.stringify(body);
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', 'ferryd cannot be reached: ' + e.message);
  }
  if (!r.ok) throw await failure(r);
  return r.json();
}

export const enc = encodeURIComponent;

// Server-sent events over fetch: calls onEvent(data) for each `data:` line
// until the stream ends or signal aborts. Resolves when it ends.
export async function stream(path, onEvent, signal) {
  const r = await fetch(path, { headers: headers({ Accept: 'text/event-stream' }), cache: 'no-store', signal });
  if (!r.ok) throw await failure(r);
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const data = block.split('\n').filter(l => l.startsWith('data: ')).map(l => l.slice(6)).join('\n');
      if (data) onEvent(JSON.parse(data));
    }
  }
}
