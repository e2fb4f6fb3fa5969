// The one load generator of bench/signaling_bench.py: the same client load
// against the Node relay and against ours. Prints JSON lines on stdout:
//   {"event":"start"}          the measured window begins (the parent reads /proc)
//   {"event":"end", ...}       it ended, with counts and latencies
//   {"event":"idle", ...}      (logins mode) every client is logged in and idle
// and waits for a line on stdin before closing in the logins mode.
//
//   node loadgen.js relay  URL --pairs 100 --seconds 5 --window 4 --sdp 1000 [--deflate]
//   node loadgen.js rate   URL --pairs 100 --seconds 5 --rate 5000 --sdp 1000 [--deflate]
//   node loadgen.js logins URL --clients 5000 --concurrency 200 [--deflate]
'use strict';
const WebSocket = require('ws');

const [mode, url, ...rest] = process.argv.slice(2);
const opt = { pairs: 100, seconds: 5, window: 4, sdp: 1000, rate: 5000, clients: 5000, concurrency: 200, warmup: 1, deflate: false, prefix: 'u' };
for (let i = 0; i < rest.length; i++) {
  const key = rest[i].replace(/^--/, '');
  if (key === 'deflate') opt.deflate = true;
  else opt[key] = key === 'prefix' ? rest[++i] : Number(rest[++i]);
}

const print = obj => process.stdout.write(JSON.stringify(obj) + '\n');
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms

function open(username) {
  // perMessageDeflate: offered as browsers offer it (or not), and the server decides.
  const ws = new WebSocket(url, { perMessageDeflate: opt.deflate, maxPayload: 0 });
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => {
      const onLogin = raw => {
        const m = JSON.parse(raw);
        if (m.type !== 'login') return;
        ws.off('message', onLogin);
        if (!m.success) reject(new Error(`login ${username} failed: ${raw}`));
        else resolve(ws);
      };
      ws.on('message', onLogin);
      ws.send(JSON.stringify({ type: 'login', username }));
    });
  });
}

async function openAll(names, concurrency) {
  const out = new Array(names.length);
  let next = 0;
  async function worker() {
    while (next < names.length) {
      const i = next++;
      out[i] = await open(names[i]);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
  return out;
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

// A pair plays offer/answer ping-pong: a sends offers to b, b answers each.
// Every offer and every answer is one relayed message. The sdp carries the
// send time so the receiver measures latency.
const PAD = 'x'.repeat(opt.sdp);
function sdpOf(sentMs, tag) {
  const head = `v=0 ${tag} ${sentMs.toFixed(3)} `;
  return head + PAD.slice(head.length);
}

async function pairs() {
  const names = [];
  for (let p = 0; p < opt.pairs; p++) names.push(`${opt.prefix}a${p}`, `${opt.prefix}b${p}`);
  const sockets = await openAll(names, 50);
  const state = { measuring: false, count: 0, latencies: [], stopped: false };
  // Cheap reading, so the generator stays far from being the bottleneck: the
  // sdp starts "v=0 <o|a> <sent ms> ", found without parsing the JSON.
  const read = raw => {
    const s = raw.toString();
    const i = s.indexOf('v=0 ');
    if (i < 0) return null;
    return { tag: s[i + 4], sent: parseFloat(s.slice(i + 6, s.indexOf(' ', i + 6))) };
  };
  const pairsList = [];
  for (let p = 0; p < opt.pairs; p++) {
    const a = sockets[2 * p], b = sockets[2 * p + 1];
    const pair = { a, b, aName: names[2 * p], bName: names[2 * p + 1], inflight: 0 };
    pairsList.push(pair);
    b.on('message', raw => {
      const m = read(raw);
      if (m === null || m.tag !== 'o') return;
      if (state.measuring) { state.count++; state.latencies.push(now() - m.sent); }
      b.send(JSON.stringify({ type: 'answer', otherUsername: pair.aName, answer: { type: 'answer', sdp: sdpOf(now(), 'a') } }));
    });
    a.on('message', raw => {
      const m = read(raw);
      if (m === null || m.tag !== 'a') return;
      if (state.measuring) { state.count++; state.latencies.push(now() - m.sent); }
      pair.inflight--;
      if (mode === 'relay' && !state.stopped) sendOffer(pair);
    });
  }
  function sendOffer(pair) {
    pair.inflight++;
    pair.a.send(JSON.stringify({ type: 'offer', otherUsername: pair.bName, offer: { type: 'offer', sdp: sdpOf(now(), 'o') } }));
  }
  let timer = null;
  if (mode === 'relay') {
    for (const pair of pairsList) for (let w = 0; w < opt.window; w++) sendOffer(pair);
  } else {
    // Fixed rate: offers spread evenly over the pairs; each offer makes two messages.
    const offersPerMs = opt.rate / 2 / 1000;
    const t0 = now();
    let sent = 0, turn = 0;
    timer = setInterval(() => {
      const due = Math.floor((now() - t0) * offersPerMs);
      while (sent < due) { sendOffer(pairsList[turn++ % pairsList.length]); sent++; }
    }, 1);
  }
  await new Promise(r => setTimeout(r, opt.warmup * 1000));
  state.measuring = true;
  const t0 = now();
  print({ event: 'start' });
  await new Promise(r => setTimeout(r, opt.seconds * 1000));
  state.measuring = false;
  const elapsed = (now() - t0) / 1000;
  state.stopped = true;
  if (timer) clearInterval(timer);
  const sorted = state.latencies.sort((x, y) => x - y);
  print({ event: 'end', messages: state.count, seconds: elapsed, p50_ms: percentile(sorted, 0.5), p99_ms: percentile(sorted, 0.99) });
  for (const ws of sockets) ws.terminate();
}

async function logins() {
  const names = [];
  for (let i = 0; i < opt.clients; i++) names.push(`${opt.prefix}${i}`);
  print({ event: 'start' });
  const t0 = now();
  const sockets = await openAll(names, opt.concurrency);
  const elapsed = (now() - t0) / 1000;
  print({ event: 'end', logins: names.length, seconds: elapsed });
  // Idle: drop what arrives (presence deltas) and wait for the parent.
  print({ event: 'idle', clients: sockets.length });
  await new Promise(r => process.stdin.once('data', r));
  for (const ws of sockets) ws.terminate();
}

(mode === 'logins' ? logins() : pairs()).then(
  () => process.exit(0),
  err => { process.stderr.write(String(err && err.stack || err) + '\n'); process.exit(1); },
);
