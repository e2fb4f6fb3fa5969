/**
 * "Test my connection": what this browser can do on this network, checked
 * with a real peer connection.
 *
 * 1. Gather candidates with the page's ICE servers (GET /api/rtc-config) for
 *    at most a few seconds: host candidates mean a local address, srflx means
 *    the STUN server answered, relay means the TURN server answered and
 *    accepted its credentials (RFC 8445 section 5.1.1).
 * 2. Send the offer to POST /api/connection-test; the server answers with a
 *    peer connection of its own that echoes every data-channel message, so a
 *    few messages give the round trip time over the path ICE chose.
 * 3. GET /api/connection-test/{id} tells the pair the server selected;
 *    DELETE ends it.
 */

import { endConnectionTest, fetchConnectionTest, startConnectionTest } from './api.js';
import { errorCode } from './errors.js';
import { candidateType, gatheringDone } from './ice.js';

/**
 * @typedef {object} ConnectionReport
 * @property {Record<string, number>} gathered  candidates per type
 * @property {{stun: string[], turn: string[]}} configured  ICE server URLs from the server
 * @property {{url: string, code: number, text: string}[]} iceErrors  icecandidateerror events
 * @property {'ok' | 'unreachable' | 'unavailable' | 'busy' | 'error'} server
 *   ok: echoes came back; unreachable: no connection; unavailable: no test endpoint;
 *   busy: the server runs as many tests as it allows
 * @property {number | null} rtt  median data-channel round trip, ms
 * @property {{local?: string, remote?: string, protocol?: string, rtt?: number} | null} selected
 *
 * @typedef {object} Finding
 * @property {'ok' | 'warn' | 'bad' | 'info'} level
 * @property {string} text
 */

/** Gathering is cut off after this long (a silent STUN server takes ~40 s). */
const GATHER_MS = 3000;
/** How long the data channel may take to open. */
const OPEN_MS = 8000;
/** Round trips measured (the median is reported). */
const PINGS = 5;
const PING_TIMEOUT_MS = 3000;

/**
 * Runs the test.
 * @param {RTCConfiguration} rtcConfig
 * @param {(step: string) => void} [onStep]  progress, in words
 * @returns {Promise<ConnectionReport>}
 */
export async function runConnectionTest(rtcConfig, onStep = () => {}) {
  /** @type {ConnectionReport} */
  const report = {
    gathered: { host: 0, srflx: 0, prflx: 0, relay: 0 },
    configured: configuredServers(rtcConfig),
    iceErrors: [],
    server: 'error',
    rtt: null,
    selected: null,
  };
  const pc = new RTCPeerConnection(rtcConfig);
  /** @type {string | null} */
  let testId = null;
  try {
    pc.addEventListener('icecandidate', (event) => {
      const type = event.candidate ? event.candidate.type || candidateType(event.candidate.candidate) : null;
      if (type) report.gathered[type] = (report.gathered[type] || 0) + 1;
    });
    pc.addEventListener('icecandidateerror', (event) => {
      const e = /** @type {RTCPeerConnectionIceErrorEvent} */ (event);
      report.iceErrors.push({ url: e.url, code: e.errorCode, text: e.errorText });
    });
    const channel = pc.createDataChannel('connection-test', { ordered: true });
    onStep('Looking for ways to connect…');
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringDone(pc, GATHER_MS);

    onStep('Reaching the server…');
    let answer;
    try {
      answer = await startConnectionTest(pc.localDescription?.sdp || '');
    } catch (err) {
      const code = errorCode(err);
      report.server = code === 'test-unavailable' ? 'unavailable' : code === 'test-busy' ? 'busy' : 'error';
      return report;
    }
    testId = answer.id;
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    if (!(await opened(channel, OPEN_MS))) {
      report.server = 'unreachable';
      return report;
    }
    onStep('Measuring the round trip…');
    const rtts = [];
    for (let i = 0; i < PINGS; i += 1) {
      const rtt = await ping(channel, i);
      if (rtt !== null) rtts.push(rtt);
    }
    if (rtts.length === 0) {
      report.server = 'unreachable';
      return report;
    }
    rtts.sort((a, b) => a - b);
    report.rtt = rtts[Math.floor(rtts.length / 2)];
    report.server = 'ok';
    report.selected = (await localSelectedPair(pc)) || null;
    try {
      // The server's view of the pair; its rtt is in seconds, like
      // RTCIceCandidatePairStats.currentRoundTripTime.
      const { selected } = await fetchConnectionTest(answer.id);
      if (selected) {
        const rtt = typeof selected.rtt === 'number' ? Math.round(selected.rtt * 1000) : report.selected?.rtt;
        report.selected = { ...report.selected, ...selected, rtt };
      }
    } catch {
      // Our own view of the pair is enough.
    }
    return report;
  } finally {
    pc.close();
    if (testId) void endConnectionTest(testId);
  }
}

/**
 * @param {RTCConfiguration} rtcConfig
 * @returns {{stun: string[], turn: string[]}}
 */
function configuredServers(rtcConfig) {
  const urls = (rtcConfig.iceServers || []).flatMap((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]));
  return {
    stun: urls.filter((u) => /^stuns?:/i.test(u)),
    turn: urls.filter((u) => /^turns?:/i.test(u)),
  };
}

/**
 * @param {RTCDataChannel} channel
 * @param {number} timeoutMs
 * @returns {Promise<boolean>}
 */
function opened(channel, timeoutMs) {
  return new Promise((resolve) => {
    if (channel.readyState === 'open') {
      resolve(true);
      return;
    }
    const timer = setTimeout(() => resolve(false), timeoutMs);
    channel.addEventListener('open', () => {
      clearTimeout(timer);
      resolve(true);
    }, { once: true });
    channel.addEventListener('close', () => {
      clearTimeout(timer);
      resolve(false);
    }, { once: true });
  });
}

/**
 * One echo round trip in ms, or null if it did not come back in time.
 * @param {RTCDataChannel} channel
 * @param {number} seq
 * @returns {Promise<number | null>}
 */
function ping(channel, seq) {
  return new Promise((resolve) => {
    const text = JSON.stringify({ type: 'ping', seq });
    const sent = performance.now();
    const timer = setTimeout(done, PING_TIMEOUT_MS, null);
    /** @param {MessageEvent} event */
    function onMessage(event) {
      if (event.data === text) done(performance.now() - sent);
    }
    /** @param {number | null} value */
    function done(value) {
      clearTimeout(timer);
      channel.removeEventListener('message', onMessage);
      resolve(value === null ? null : Math.round(value * 10) / 10);
    }
    channel.addEventListener('message', onMessage);
    channel.send(text);
  });
}

/**
 * The pair ICE selected, as this browser sees it.
 * @param {RTCPeerConnection} pc
 */
async function localSelectedPair(pc) {
  const stats = await pc.getStats();
  /** @type {any} */
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  return {
    local: local?.candidateType,
    remote: remote?.candidateType,
    protocol: local?.relayProtocol || local?.protocol,
    rtt: typeof pair.currentRoundTripTime === 'number' ? Math.round(pair.currentRoundTripTime * 1000) : undefined,
  };
}

/**
 * The report in plain words, with what to fix, most important first.
 * @param {ConnectionReport} report
 * @returns {Finding[]}
 */
export function describeReport(report) {
  /** @type {Finding[]} */
  const findings = [];
  const { gathered, configured } = report;
  const found = ['host', 'srflx', 'relay'].filter((t) => gathered[t] > 0);

  if (report.server === 'ok') {
    const rtt = report.rtt ?? 0;
    const via = report.selected?.local === 'relay' ? ' through the TURN relay' : '';
    const level = rtt < 150 ? 'ok' : rtt < 400 ? 'warn' : 'bad';
    const advice = level === 'ok' ? '' : level === 'warn' ? ' Calls will work but may lag.' : ' Calls will lag badly.';
    findings.push({ level, text: `Reached the server${via}: a message goes there and back in ${Math.round(rtt)} ms.${advice}` });
  } else if (report.server === 'unreachable') {
    findings.push({
      level: 'bad',
      text: 'Your browser could not reach the server’s media port, so calls will not connect from here. '
        + 'The server’s UDP ports are blocked or not announced: ask whoever runs it to open them '
        + '(--rtc-ports), set --announce-address behind NAT, or configure a TURN relay.',
    });
  } else if (report.server === 'busy') {
    findings.push({ level: 'warn', text: 'The server is running other connection tests right now. Try again in a few seconds.' });
  } else if (report.server === 'unavailable') {
    findings.push({ level: 'info', text: 'This server does not offer a round-trip test; only your side was checked.' });
  } else {
    findings.push({ level: 'warn', text: 'The server did not complete the test; only your side was checked.' });
  }

  findings.push(gathered.host > 0
    ? { level: 'ok', text: 'Your browser found its local network address.' }
    : { level: 'warn', text: 'Your browser offered no local address (a privacy setting or an extension may hide it), so calls on the same network must go through a server.' });

  if (configured.stun.length === 0) {
    findings.push({
      level: 'info',
      text: 'No STUN server is configured. That is fine on one network; for calls across the internet the server needs --stun.',
    });
  } else if (gathered.srflx > 0) {
    findings.push({ level: 'ok', text: 'The STUN server answered: your public address is known.' });
  } else {
    findings.push({
      level: 'bad',
      text: `The STUN server did not answer (${configured.stun.join(', ')}). Check its address and that UDP to it is not blocked.`,
    });
  }

  if (configured.turn.length === 0) {
    findings.push({
      level: 'info',
      text: 'No TURN relay is configured, so calls from networks that block UDP or strict NATs will fail. The server needs --turn-url and --turn-secret.',
    });
  } else if (gathered.relay > 0) {
    findings.push({ level: 'ok', text: 'The TURN relay answered and accepted its credentials: calls can go through it when nothing else works.' });
  } else {
    const refused = report.iceErrors.find((e) => /^turns?:/i.test(e.url || '') && (e.code === 401 || e.code === 403));
    findings.push({
      level: 'bad',
      text: refused
        ? `The TURN relay refused the credentials (${refused.code} ${refused.text}). Check that --turn-secret matches the relay’s static-auth-secret.`
        : `The TURN relay did not answer (${configured.turn.join(', ')}). Check its address and that its port is open from here.`,
    });
  }

  findings.push({
    level: 'info',
    text: `Ways found: ${found.length ? found.map((t) => `${TYPE_NAMES[t]} (${gathered[t]})`).join(', ') : 'none'}.`,
  });
  // Problems first, then warnings, what works, and notes.
  const order = { bad: 0, warn: 1, ok: 2, info: 3 };
  return findings.map((f, i) => ({ f, i })).sort((a, b) => order[a.f.level] - order[b.f.level] || a.i - b.i).map(({ f }) => f);
}

/** @type {Record<string, string>} */
const TYPE_NAMES = Object.freeze({ host: 'local address', srflx: 'public address via STUN', relay: 'TURN relay' });
