/**
 * Photos over the `photos` data channel, both ways (photos/protocol.py):
 *
 *   -> {"type":"photo-begin","id","name","mime","size","sha256"}
 *   -> binary chunks, each at most pc.sctp.maxMessageSize
 *   -> {"type":"photo-end","id"}
 *   <- {"type":"photo-saved","id","size","sha256"} | {"type":"photo-error","id","error","message"}
 *
 * The bot only receives; another browser also receives and answers with the
 * same replies, so one link serves both kinds of call.
 */

import { AppError } from './errors.js';

/**
 * @typedef {object} Photo
 * @property {string} id
 * @property {string} name
 * @property {string} mime
 * @property {ArrayBuffer} bytes
 * @property {string} sha256  64 lowercase hex digits
 *
 * @typedef {object} PhotoLink
 * @property {(photo: Photo, onProgress?: (fraction: number) => void) => Promise<{size: number, sha256: string}>} send
 *   resolves on photo-saved, rejects with an AppError (the photo-error code) otherwise
 * @property {() => void} close
 */

/** Used when the browser does not report a max message size (RFC 8841 default). */
const FALLBACK_CHUNK = 64 * 1024;
/** Never send messages larger than this, even when the peer allows "infinite". */
const MAX_CHUNK = 256 * 1024;
/** Keep at most this much queued in the channel before waiting for it to drain. */
const HIGH_WATER = 1024 * 1024;
/** Largest photo accepted from a peer (the server's default limit). */
const MAX_INCOMING_BYTES = 20 * 1024 * 1024;
/** How long the receiver may take to confirm after photo-end. */
const REPLY_TIMEOUT_MS = 30000;

/**
 * The chunk size for this connection: the peer's SCTP max message size
 * (RFC 8841 section 6), bounded to something sensible.
 * @param {RTCPeerConnection} pc
 * @returns {number}
 */
export function chunkSizeFor(pc) {
  const max = pc.sctp?.maxMessageSize;
  if (typeof max !== 'number' || !(max > 0)) return FALLBACK_CHUNK;
  return Math.min(max, MAX_CHUNK);
}

/**
 * SHA-256 of `bytes` as lowercase hex (WebCrypto needs a secure context,
 * which the page already needs for the camera).
 * @param {ArrayBuffer} bytes
 * @returns {Promise<string>}
 */
export async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * A JPEG snapshot of what `video` shows right now.
 * @param {HTMLVideoElement} video
 * @param {{name?: string, quality?: number}} [options]
 * @returns {Promise<Photo & {blob: Blob}>}
 */
export async function snapshot(video, { name, quality = 0.9 } = {}) {
  if (!video.videoWidth || !video.videoHeight) throw new AppError('no-video');
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const context = canvas.getContext('2d');
  if (!context) throw new AppError('no-video');
  context.drawImage(video, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new AppError('no-video'))), 'image/jpeg', quality),
  );
  const bytes = await blob.arrayBuffer();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    id: newPhotoId(),
    name: name || `snapshot-${stamp}.jpg`,
    mime: 'image/jpeg',
    bytes,
    sha256: await sha256Hex(bytes),
    blob,
  };
}

/** @returns {string} */
function newPhotoId() {
  const random = new Uint32Array(2);
  crypto.getRandomValues(random);
  return `p-${Date.now().toString(36)}-${random[0].toString(36)}${random[1].toString(36)}`;
}

/**
 * Resolves once the channel's queue has drained to bufferedAmountLowThreshold.
 * @param {RTCDataChannel} channel
 * @returns {Promise<void>}
 */
function drained(channel) {
  return new Promise((resolve, reject) => {
    if (channel.bufferedAmount <= channel.bufferedAmountLowThreshold) {
      resolve();
      return;
    }
    const onLow = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      reject(new AppError('channel-closed'));
    };
    function cleanup() {
      channel.removeEventListener('bufferedamountlow', onLow);
      channel.removeEventListener('close', onClose);
    }
    channel.addEventListener('bufferedamountlow', onLow);
    channel.addEventListener('close', onClose);
  });
}

/**
 * Sends the bytes of one photo: begin, chunks paced by the channel's buffer,
 * end. Resolves when everything is queued.
 * @param {RTCDataChannel} channel
 * @param {RTCPeerConnection} pc
 * @param {Photo} photo
 * @param {(fraction: number) => void} onProgress
 */
async function transmit(channel, pc, photo, onProgress) {
  const chunk = chunkSizeFor(pc);
  channel.bufferedAmountLowThreshold = Math.max(chunk, HIGH_WATER / 2);
  const total = photo.bytes.byteLength;
  channel.send(JSON.stringify({
    type: 'photo-begin',
    id: photo.id,
    name: photo.name,
    mime: photo.mime,
    size: total,
    sha256: photo.sha256,
  }));
  for (let offset = 0; offset < total; offset += chunk) {
    if (channel.readyState !== 'open') throw new AppError('channel-closed');
    if (channel.bufferedAmount > HIGH_WATER) await drained(channel);
    const end = Math.min(offset + chunk, total);
    channel.send(new Uint8Array(photo.bytes, offset, end - offset));
    // Progress counts bytes that have left the queue, not just entered it.
    onProgress(Math.max(0, end - channel.bufferedAmount) / total);
  }
  channel.send(JSON.stringify({ type: 'photo-end', id: photo.id }));
  onProgress(1);
}

/**
 * Creates a photo link on `channel`.
 *
 * @param {RTCDataChannel} channel  labelled `photos`
 * @param {RTCPeerConnection} pc
 * @param {{onPhoto?: (photo: {id: string, name: string, mime: string, blob: Blob, sha256: string}) => void}} [handlers]
 *   `onPhoto` receives photos the peer sent and verified
 * @returns {PhotoLink}
 */
export function createPhotoLink(channel, pc, { onPhoto } = {}) {
  channel.binaryType = 'arraybuffer';
  /** @type {Map<string, {resolve: Function, reject: Function}>} */
  const waiting = new Map();
  /** Sends are serialised: the protocol carries one photo at a time. */
  let queue = Promise.resolve();
  /** @type {{id: any, name: string, mime: string, size: number, sha256: string, parts: ArrayBuffer[], received: number} | null} */
  let incoming = null;
  let discarding = false;

  channel.addEventListener('message', (event) => {
    if (typeof event.data === 'string') onText(event.data);
    else onChunk(/** @type {ArrayBuffer} */ (event.data));
  });
  channel.addEventListener('close', () => {
    for (const { reject } of waiting.values()) reject(new AppError('channel-closed'));
    waiting.clear();
    incoming = null;
  });

  /** @param {object} message */
  function reply(message) {
    if (channel.readyState === 'open') channel.send(JSON.stringify(message));
  }

  /**
   * @param {any} id
   * @param {string} error
   * @param {string} message
   */
  function rejectIncoming(id, error, message) {
    reply({ type: 'photo-error', id, error, message });
    incoming = null;
    discarding = true;
  }

  /** @param {string} text */
  function onText(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      reply({ type: 'photo-error', id: null, error: 'bad-message', message: 'not JSON' });
      return;
    }
    switch (message?.type) {
      case 'photo-saved': {
        const pending = waiting.get(message.id);
        waiting.delete(message.id);
        pending?.resolve({ size: message.size, sha256: message.sha256 });
        break;
      }
      case 'photo-error': {
        const pending = waiting.get(message.id);
        waiting.delete(message.id);
        pending?.reject(new AppError(String(message.error || 'unknown'), message.message));
        break;
      }
      case 'photo-begin':
        onBegin(message);
        break;
      case 'photo-end':
        onEnd(message);
        break;
      default:
        reply({ type: 'photo-error', id: message?.id ?? null, error: 'bad-message', message: 'unknown type' });
    }
  }

  /** @param {any} message  a parsed photo-begin */
  function onBegin(message) {
    const { id, name, mime, size, sha256 } = message;
    discarding = false;
    if (incoming) reply({ type: 'photo-error', id: incoming.id, error: 'interrupted', message: 'a new photo began' });
    incoming = null;
    if (!['image/jpeg', 'image/png', 'image/webp'].includes(mime)) {
      rejectIncoming(id, 'unknown-mime', 'only JPEG, PNG and WebP photos are accepted');
    } else if (!Number.isInteger(size) || size <= 0 || size > MAX_INCOMING_BYTES) {
      rejectIncoming(id, 'too-large', `photos are at most ${MAX_INCOMING_BYTES} bytes`);
    } else if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) {
      rejectIncoming(id, 'bad-message', 'sha256 must be 64 lowercase hex digits');
    } else {
      incoming = { id, name: String(name || 'photo'), mime, size, sha256, parts: [], received: 0 };
    }
  }

  /** @param {ArrayBuffer} data */
  function onChunk(data) {
    if (discarding) return;
    if (!incoming) {
      rejectIncoming(null, 'unexpected-chunk', 'binary data outside a photo');
      return;
    }
    incoming.received += data.byteLength;
    if (incoming.received > incoming.size) {
      rejectIncoming(incoming.id, 'size-mismatch', 'more bytes than announced');
      return;
    }
    incoming.parts.push(data);
  }

  /** @param {any} message  a parsed photo-end */
  async function onEnd(message) {
    if (discarding) {
      discarding = false;
      return;
    }
    const photo = incoming;
    incoming = null;
    if (!photo || photo.id !== message.id) {
      reply({ type: 'photo-error', id: message.id ?? null, error: 'unexpected-end', message: 'no such photo' });
      return;
    }
    if (photo.received !== photo.size) {
      reply({ type: 'photo-error', id: photo.id, error: 'size-mismatch', message: 'fewer bytes than announced' });
      return;
    }
    const blob = new Blob(photo.parts, { type: photo.mime });
    const digest = await sha256Hex(await blob.arrayBuffer());
    if (digest !== photo.sha256) {
      reply({ type: 'photo-error', id: photo.id, error: 'hash-mismatch', message: 'sha256 differs' });
      return;
    }
    reply({ type: 'photo-saved', id: photo.id, size: photo.size, sha256: digest });
    onPhoto?.({ id: photo.id, name: photo.name, mime: photo.mime, blob, sha256: digest });
  }

  /**
   * @param {Photo} photo
   * @param {(fraction: number) => void} [onProgress]
   */
  function send(photo, onProgress = () => {}) {
    const result = queue.then(async () => {
      if (channel.readyState !== 'open') throw new AppError('no-channel');
      const confirmed = new Promise((resolve, reject) => {
        waiting.set(photo.id, { resolve, reject });
      });
      try {
        await transmit(channel, pc, photo, onProgress);
      } catch (err) {
        waiting.delete(photo.id);
        throw err;
      }
      return withTimeout(confirmed, REPLY_TIMEOUT_MS, () => waiting.delete(photo.id));
    });
    queue = result.catch(() => {});
    return result;
  }

  return {
    send,
    close: () => {
      for (const { reject } of waiting.values()) reject(new AppError('channel-closed'));
      waiting.clear();
    },
  };
}

/**
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {() => void} onTimeout
 * @returns {Promise<T>}
 */
function withTimeout(promise, ms, onTimeout) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout();
      reject(new AppError('timeout'));
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
