/**
 * The signaling client: JSON text frames over one WebSocket to `/ws`.
 * See signaling/protocol.py for the wire format.
 */

import { withToken } from './token.js';
import { AppError } from './errors.js';

/**
 * @typedef {{type: string, [key: string]: any}} Message
 *
 * @typedef {object} Signaling
 * @property {() => Promise<void>} connect  opens the socket (idempotent)
 * @property {(username: string, extra?: object) => Promise<Message>} login  the login reply
 * @property {(message: Message) => void} send
 * @property {(handler: (message: Message) => void) => () => void} onMessage
 * @property {(handler: (info: {code: number, reason: string}) => void) => () => void} onDisconnect
 * @property {() => boolean} isOpen
 * @property {(code?: number, reason?: string) => void} close  1000 (the default) means leaving for good
 */

/**
 * The signaling URL for the page's own origin: wss on https, ws on http.
 * @param {Location} [location]
 * @returns {string}
 */
export function signalingUrl(location = window.location) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return withToken(`${scheme}//${location.host}/ws`, location);
}

/**
 * Creates a signaling client. Nothing connects until `connect` or `login`.
 *
 * @param {string} url
 * @param {{loginTimeoutMs?: number, connectTimeoutMs?: number}} [options]
 * @returns {Signaling}
 */
export function createSignaling(url, { loginTimeoutMs = 10000, connectTimeoutMs = 10000 } = {}) {
  const events = new EventTarget();
  /** @type {WebSocket | null} */
  let socket = null;
  /** @type {Promise<void> | null} */
  let opening = null;

  function connect() {
    if (socket && socket.readyState === WebSocket.OPEN) return Promise.resolve();
    if (opening) return opening;
    opening = /** @type {Promise<void>} */ (new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(url);
      } catch (err) {
        reject(new AppError('server-unreachable', String(err)));
        return;
      }
      let opened = false;
      // A server behind a dead route never answers; do not wait forever.
      const timer = setTimeout(() => {
        if (!opened) ws.close();
      }, connectTimeoutMs);
      ws.addEventListener('open', () => {
        clearTimeout(timer);
        opened = true;
        socket = ws;
        resolve();
      });
      ws.addEventListener('message', (event) => {
        if (typeof event.data !== 'string') return;
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        if (message && typeof message.type === 'string') {
          events.dispatchEvent(new CustomEvent('message', { detail: message }));
        }
      });
      ws.addEventListener('close', (event) => {
        clearTimeout(timer);
        if (socket === ws) socket = null;
        if (!opened) {
          reject(new AppError('server-unreachable', `closed before open (${event.code})`));
          return;
        }
        events.dispatchEvent(
          new CustomEvent('disconnect', { detail: { code: event.code, reason: event.reason } }),
        );
      });
    })).finally(() => {
      opening = null;
    });
    return opening;
  }

  /**
   * The next message of `type`, or a rejection on timeout or disconnect.
   * @param {string} type
   * @param {number} timeoutMs
   * @returns {Promise<Message>}
   */
  function next(type, timeoutMs) {
    return new Promise((resolve, reject) => {
      const offMessage = onMessage((message) => {
        if (message.type !== type) return;
        done();
        resolve(message);
      });
      const offDisconnect = onDisconnect(() => {
        done();
        reject(new AppError('connection-lost'));
      });
      const timer = setTimeout(() => {
        done();
        reject(new AppError('timeout'));
      }, timeoutMs);
      function done() {
        clearTimeout(timer);
        offMessage();
        offDisconnect();
      }
    });
  }

  /**
   * @param {string} username
   * @param {object} [extra]  more login fields, e.g. `{resume: token}`
   */
  async function login(username, extra = {}) {
    await connect();
    const reply = next('login', loginTimeoutMs);
    send({ ...extra, type: 'login', username });
    return reply;
  }

  /** @param {Message} message */
  function send(message) {
    if (!socket || socket.readyState !== WebSocket.OPEN) throw new AppError('connection-lost');
    socket.send(JSON.stringify(message));
  }

  /** @param {(message: Message) => void} handler */
  function onMessage(handler) {
    const listener = (/** @type {Event} */ event) => handler(/** @type {CustomEvent} */ (event).detail);
    events.addEventListener('message', listener);
    return () => events.removeEventListener('message', listener);
  }

  /** @param {(info: {code: number, reason: string}) => void} handler */
  function onDisconnect(handler) {
    const listener = (/** @type {Event} */ event) => handler(/** @type {CustomEvent} */ (event).detail);
    events.addEventListener('disconnect', listener);
    return () => events.removeEventListener('disconnect', listener);
  }

  return {
    connect,
    login,
    send,
    onMessage,
    onDisconnect,
    isOpen: () => Boolean(socket && socket.readyState === WebSocket.OPEN),
    close: (code = 1000, reason = 'bye') => socket?.close(code, reason),
  };
}
