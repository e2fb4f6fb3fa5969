/**
 * The signed-in session: one signaling connection that comes back by itself.
 *
 * When the socket drops, the session reconnects with exponential backoff
 * (plus jitter, so a restarted server is not hit by every page at once). If
 * the login reply carried a resume token (`resumeToken`, `resumeGrace`
 * seconds) and the grace has not run out, it logs in again with
 * `{"type":"login","username":U,"resume":TOKEN}`: a reply with
 * `"resumed": true` means the server kept the user's calls and now delivers
 * what was queued meanwhile, so the page keeps its peer connection. Anything
 * else (no token, the grace ran out, the server refused the token, or the
 * server restarted) ends in a plain login: the user is back online, and a
 * call they had is over (`callLost`).
 *
 * Messages sent while reconnecting wait in a bounded outbox and go out after
 * a successful resume; after a plain login they are dropped, since the calls
 * they belonged to are gone.
 */

import { AppError } from './errors.js';

/**
 * @typedef {import('./signaling.js').Signaling} Signaling
 * @typedef {import('./signaling.js').Message} Message
 *
 * @typedef {'signed-out' | 'online' | 'reconnecting'} SessionStatus
 *
 * @typedef {object} StatusChange
 * @property {SessionStatus} status
 * @property {boolean} [resumed]  online again with the same calls
 * @property {boolean} [callLost]  online again, but calls did not survive
 * @property {boolean} [restarting]  the server said it was going away (close 1001)
 * @property {string} [error]  why the session ended (signed-out only)
 * @property {number} [attempt]  reconnect attempts so far
 * @property {Message} [reply]  the login reply that brought the session back online
 *
 * @typedef {object} Session
 * @property {(username: string) => Promise<Message>} login  the login reply (success or not)
 * @property {(message: object) => void} send  throws AppError('connection-lost') when signed out
 * @property {() => void} signOut
 * @property {() => SessionStatus} status
 *
 * @typedef {object} Backoff
 * @property {number} firstMs  delay before the first reconnect attempt
 * @property {number} maxMs  longest delay between attempts
 * @property {number} jitter  each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
 */

/** @type {Backoff} */
export const DEFAULT_BACKOFF = Object.freeze({ firstMs: 500, maxMs: 8000, jitter: 0.2 });
/**
 * Close code for a socket the page gives up on while reconnecting (it
 * answered nothing): not 1000, which tells the server the user left.
 */
const CLOSE_RETRY = 4000;
/** Messages kept for the server while reconnecting. */
const OUTBOX_LIMIT = 256;
/**
 * How long a plain login keeps retrying `username-taken`: the server may
 * still hold our old connection (it notices a dead one within 1.5
 * heartbeats) or the resume grace.
 */
const TAKEN_RETRY_MS = 60000;

/**
 * The delay before reconnect attempt `attempt` (0-based).
 * @param {number} attempt
 * @param {Backoff} backoff
 * @param {() => number} [random]
 * @returns {number}  milliseconds
 */
export function backoffDelay(attempt, backoff, random = Math.random) {
  const base = Math.min(backoff.maxMs, backoff.firstMs * 2 ** attempt);
  return Math.round(base * (1 - backoff.jitter + 2 * backoff.jitter * random()));
}

/**
 * @param {object} options
 * @param {Signaling} options.signaling
 * @param {(message: Message) => void} options.onMessage  every message but login replies
 * @param {(change: StatusChange) => void} options.onStatus
 * @param {Backoff} [options.backoff]
 * @param {Window} [options.win]  for `online` events and timers
 * @returns {Session}
 */
export function createSession({ signaling, onMessage, onStatus, backoff = DEFAULT_BACKOFF, win = window }) {
  /** @type {SessionStatus} */
  let status = 'signed-out';
  /** @type {string | null} */
  let username = null;
  /** @type {{token: string, graceMs: number} | null} */
  let resume = null;
  let droppedAt = 0;
  let attempt = 0;
  let signingOut = false;
  let busy = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  /** @type {Message[]} */
  const outbox = [];

  signaling.onMessage((message) => {
    if (message.type !== 'login') onMessage(message);
  });

  signaling.onDisconnect(({ code }) => {
    if (status !== 'online') return; // a failed attempt: the loop goes on by itself
    if (signingOut || username === null) {
      setStatus({ status: 'signed-out' });
      return;
    }
    droppedAt = Date.now();
    attempt = 0;
    // 1001 (going away): the server is shutting down or restarting.
    setStatus({ status: 'reconnecting', restarting: code === 1001, attempt });
    schedule();
  });

  win.addEventListener('online', () => {
    // The network came back: try now rather than at the next backoff step.
    if (status === 'reconnecting' && !busy) {
      clearTimeout(timer);
      void reconnect();
    }
  });

  /** @param {StatusChange} change */
  function setStatus(change) {
    status = change.status;
    onStatus(change);
  }

  /** @param {Message} reply */
  function remember(reply) {
    const token = typeof reply.resumeToken === 'string' ? reply.resumeToken : null;
    const grace = Number(reply.resumeGrace);
    resume = token && grace > 0 ? { token, graceMs: grace * 1000 } : null;
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(() => void reconnect(), backoffDelay(attempt, backoff));
    attempt += 1;
  }

  async function reconnect() {
    if (status !== 'reconnecting' || busy || username === null) return;
    busy = true;
    try {
      await reconnectOnce(username);
    } finally {
      busy = false;
    }
  }

  /** @param {string} name */
  async function reconnectOnce(name) {
    try {
      await signaling.connect();
    } catch {
      setStatus({ status: 'reconnecting', attempt });
      schedule();
      return;
    }
    if (resume && Date.now() - droppedAt < resume.graceMs) {
      let reply;
      try {
        reply = await signaling.login(name, { resume: resume.token });
      } catch {
        // No answer: a fresh socket next time; the token is still good.
        signaling.close(CLOSE_RETRY, 'no answer');
        schedule();
        return;
      }
      resume = null; // answered: a token works once, a refused one never
      if (reply.success) {
        remember(reply);
        attempt = 0;
        if (reply.resumed === true) {
          for (const message of outbox.splice(0)) signaling.send(message);
          setStatus({ status: 'online', resumed: true, reply });
        } else {
          outbox.length = 0;
          setStatus({ status: 'online', resumed: false, callLost: true, reply });
        }
        return;
      }
      // Refused or expired: a plain login below.
    }
    outbox.length = 0;
    let reply;
    try {
      reply = await signaling.login(name);
    } catch {
      signaling.close(CLOSE_RETRY, 'no answer');
      schedule();
      return;
    }
    if (reply.success) {
      remember(reply);
      attempt = 0;
      setStatus({ status: 'online', resumed: false, callLost: true, reply });
      return;
    }
    const retryable = reply.error === 'username-taken' || reply.error === 'unavailable';
    if (retryable && Date.now() - droppedAt < TAKEN_RETRY_MS) {
      schedule();
      return;
    }
    username = null;
    signaling.close();
    setStatus({ status: 'signed-out', error: String(reply.error || 'connection-lost') });
  }

  /** @param {string} name */
  async function login(name) {
    signingOut = false;
    const reply = await signaling.login(name);
    if (reply.success) {
      username = typeof reply.username === 'string' ? reply.username : name;
      remember(reply);
      outbox.length = 0;
      setStatus({ status: 'online', reply });
    }
    return reply;
  }

  /** @param {Message} message */
  function send(message) {
    if (status === 'reconnecting') {
      if (outbox.length >= OUTBOX_LIMIT) outbox.shift();
      outbox.push(message);
      return;
    }
    if (status !== 'online') throw new AppError('connection-lost');
    signaling.send(message);
  }

  function signOut() {
    signingOut = true;
    clearTimeout(timer);
    username = null;
    resume = null;
    outbox.length = 0;
    const wasOnline = status === 'online';
    signaling.close();
    if (!wasOnline) setStatus({ status: 'signed-out' });
  }

  return { login, send, signOut, status: () => status };
}
