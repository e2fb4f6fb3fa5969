/**
 * The HTTP half of WHIP (RFC 9725) and WHEP: one offer/answer over POST,
 * candidates trickled with PATCH (application/trickle-ice-sdpfrag, RFC 8840),
 * DELETE to end. Shared by whip.js (publish) and whep.js (watch); no state
 * at module level.
 */

/** An HTTP refusal, with the server's error code when it sent one. */
export class SessionError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {number | null} retryAfter  seconds, from Retry-After
   */
  constructor(status, code, message, retryAfter) {
    super(message || `HTTP ${status}`);
    this.name = 'SessionError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/**
 * @param {string | null | undefined} token
 * @returns {Record<string, string>}
 */
function auth(token) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * @param {Response} response
 * @returns {Promise<SessionError>}
 */
async function refusal(response) {
  let code = 'http-error';
  let message = '';
  try {
    const body = await response.json();
    code = typeof body.error === 'string' ? body.error : code;
    message = typeof body.message === 'string' ? body.message : '';
  } catch {
    // Not our JSON: the status says enough.
  }
  const retry = Number(response.headers.get('Retry-After'));
  return new SessionError(response.status, code, message, Number.isFinite(retry) && retry > 0 ? retry : null);
}

/**
 * The sdpfrag for `candidates`: the ICE credentials, then per media section
 * its m-line and mid and its candidates (RFC 8840 section 9).
 * @param {string} offerSdp
 * @param {RTCIceCandidate[]} candidates
 * @param {boolean} end
 * @returns {string}
 */
export function sdpFragment(offerSdp, candidates, end) {
  const lines = offerSdp.split(/\r?\n/);
  const ufrag = lines.find((l) => l.startsWith('a=ice-ufrag:'));
  const pwd = lines.find((l) => l.startsWith('a=ice-pwd:'));
  const mlines = new Map(); // mid -> its m= line
  let current = null;
  for (const line of lines) {
    if (line.startsWith('m=')) current = line;
    else if (line.startsWith('a=mid:') && current) mlines.set(line.slice(6), current);
  }
  const out = [ufrag, pwd];
  const byMid = new Map();
  for (const c of candidates) {
    const mid = c.sdpMid ?? [...mlines.keys()][c.sdpMLineIndex ?? 0];
    if (!byMid.has(mid)) byMid.set(mid, []);
    byMid.get(mid).push(c.candidate);
  }
  if (end && byMid.size === 0) byMid.set([...mlines.keys()][0], []);
  for (const [mid, list] of byMid) {
    out.push(mlines.get(mid) || 'm=audio 9 UDP/TLS/RTP/SAVPF 0', `a=mid:${mid}`);
    for (const c of list) out.push(`a=${c}`);
  }
  if (end) out.push('a=end-of-candidates');
  return out.filter(Boolean).join('\r\n') + '\r\n';
}

/**
 * Offers `pc`'s local description to `endpoint` and applies the answer.
 * Candidates found after the offer are PATCHed (one request in flight at a
 * time, in order), ending with a=end-of-candidates.
 * @param {RTCPeerConnection} pc  with its transceivers added
 * @param {string} endpoint  e.g. `/whip` or `/whep/<call id>`
 * @param {{token?: string | null}} [options]
 * @returns {Promise<{resource: string, stop: () => Promise<void>}>}
 */
export async function negotiate(pc, endpoint, { token = null } = {}) {
  const pending = [];
  let ended = false;
  let resource = null;
  let etag = null;
  let sending = Promise.resolve();

  const flush = () => {
    if (!resource || (pending.length === 0 && !ended)) return;
    const batch = pending.splice(0);
    const end = ended;
    ended = false;
    const body = sdpFragment(pc.localDescription.sdp, batch, end);
    sending = sending.then(() => fetch(resource, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', ...(etag ? { 'If-Match': etag } : {}), ...auth(token) },
      body,
    })).catch(() => { /* a lost candidate only narrows the choice of paths */ });
  };
  pc.addEventListener('icecandidate', (event) => {
    if (event.candidate && event.candidate.candidate) pending.push(event.candidate);
    else if (!event.candidate) ended = true;
    flush();
  });

  await pc.setLocalDescription(await pc.createOffer());
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', ...auth(token) },
    body: pc.localDescription.sdp,
  });
  if (response.status !== 201) throw await refusal(response);
  resource = new URL(response.headers.get('Location'), new URL(endpoint, window.location.href)).href;
  etag = response.headers.get('ETag');
  await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
  flush();

  return {
    resource,
    async stop() {
      await sending;
      try {
        await fetch(resource, { method: 'DELETE', headers: auth(token) });
      } finally {
        pc.close();
      }
    },
  };
}
