/**
 * Plain-language text for every error a person can meet on the page, keyed by
 * the server's stable error codes (callbot/signaling/protocol.py, the bot's
 * codes, photo-error codes) and by DOMException names from getUserMedia.
 */

/** @type {Record<string, (ctx: {peer?: string, detail?: string}) => string>} */
const MESSAGES = Object.freeze({
  // Signaling / login
  'username-taken': () => 'That name is already in use. Please pick another one.',
  'invalid-username': () =>
    'Names are 1 to 64 letters or digits (plus . _ - @), starting with a letter or digit.',
  'already-logged-in': () => 'You are already signed in on this connection.',
  'server-unreachable': () =>
    'Can’t reach the server. Check that it is running and that you are online, then try again.',
  'connection-lost': () => 'The connection to the server was lost. Sign in again to continue.',
  'timeout': () => 'The server did not answer in time. Please try again.',
  'user-offline': ({ peer }) => `${peer || 'That person'} is not online any more.`,
  'self-message': () => 'You can’t call yourself.',
  // Calls
  'declined': ({ peer }) => `${peer || 'They'} declined the call.`,
  'hung-up': ({ peer }) => `${peer || 'The other side'} hung up.`,
  'no-answer': ({ peer }) => `${peer || 'They'} didn’t answer.`,
  'ice-failed': () =>
    'The call could not connect: the network between you is blocking it.',
  'already-in-call': () =>
    'You already have a call with the bot open (maybe in another tab). Hang up there first.',
  'too-many-calls': () => 'The bot is busy with other calls right now. Please try again shortly.',
  'bad-offer': () => 'The bot could not set up a call with this browser.',
  'shutting-down': () => 'The server is restarting. Please try again in a moment.',
  'storage-unavailable': () => 'The server can’t store calls right now. Please try later.',
  'busy': ({ peer }) => `${peer || 'They'} are already in another call.`,
  // Camera and microphone (getUserMedia DOMException names)
  'NotAllowedError': () =>
    'Camera or microphone access was denied. Allow both for this site in your browser’s ' +
    'site settings, then try again.',
  'SecurityError': () =>
    'Camera or microphone access was denied. Allow both for this site in your browser’s ' +
    'site settings, then try again.',
  'NotFoundError': () => 'No camera or microphone was found. Plug one in and try again.',
  'NotReadableError': () =>
    'Your camera or microphone is in use by another application. Close it and try again.',
  'OverconstrainedError': () => 'Your camera can’t provide a usable video format.',
  'insecure-context': () =>
    'Calls need a secure page: open this site over https, or on localhost.',
  'no-webrtc': () => 'This browser does not support video calls.',
  // Photos (callbot/media/photos_errors.py codes)
  'too-large': () => 'The photo is too large to send.',
  'too-many-photos': () => 'This call already has as many photos as it can keep.',
  'hash-mismatch': () => 'The photo was damaged on the way. Please send it again.',
  'size-mismatch': () => 'The photo was damaged on the way. Please send it again.',
  'not-an-image': () => 'The snapshot could not be read as an image.',
  'storage-failed': () => 'The server could not save the photo. Please try again.',
  'channel-closed': () => 'The call ended before the photo was delivered.',
  'no-channel': () => 'Photos can’t be sent in this call yet. Wait until it is connected.',
  'no-video': () => 'Your camera isn’t showing a picture yet.',
  'upload-unavailable': () => 'The server doesn’t keep photo copies yet.',
});

/**
 * The sentence to show for an error code or DOMException name.
 *
 * @param {string} code  a server error code or an Error's `name`
 * @param {{peer?: string, detail?: string}} [ctx]
 * @returns {string}
 */
export function describeError(code, ctx = {}) {
  const fn = MESSAGES[code];
  if (fn) return fn(ctx);
  return ctx.detail ? `Something went wrong: ${ctx.detail}` : 'Something went wrong. Please try again.';
}

/**
 * An Error carrying a stable `code` for {@link describeError}.
 */
export class AppError extends Error {
  /**
   * @param {string} code
   * @param {string} [message]
   */
  constructor(code, message) {
    super(message || code);
    this.name = 'AppError';
    this.code = code;
  }
}

/**
 * The code to describe for anything thrown (AppError, DOMException, Error).
 * @param {unknown} error
 * @returns {string}
 */
export function errorCode(error) {
  if (error instanceof AppError) return error.code;
  if (error && typeof error === 'object' && 'name' in error) return String(error.name);
  return 'unknown';
}
