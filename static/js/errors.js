/**
 * Plain-language text for every error a person can meet on the page, keyed by
 * the server's stable error codes (signaling/protocol.py, the bot's codes,
 * photo-error codes) and by DOMException names from getUserMedia.
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
  'call-lost': () => 'The call ended: the connection to the server was lost.',
  'server-restart': () => 'The call ended: the server is restarting.',
  'unavailable': () => 'The server can’t sign you in right now. Please try again in a moment.',
  'not-authorized': () => 'This link signs in another name. Use the name your link was made for.',
  'timeout': () => 'The server did not answer in time. Please try again.',
  'user-offline': ({ peer }) => `${peer || 'That person'} is not online any more.`,
  'self-message': () => 'You can’t call yourself.',
  // Calls
  'declined': ({ peer }) => `${peer || 'They'} declined the call.`,
  'hung-up': ({ peer }) => `${peer || 'The other side'} hung up.`,
  'no-answer': ({ peer }) => `${peer || 'They'} didn’t answer.`,
  'ice-failed': () =>
    'The call could not connect: the network between you is blocking it. “Test my connection” shows what is blocked.',
  'media-interrupted': () => 'The connection is unsteady; waiting for it to come back…',
  'bot-hangup': ({ peer }) => `${peer || 'The bot'} ended the call.`,
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
    'Your browser lets a page use the camera and microphone only over https (or as localhost on the '
    + 'server’s own computer). Open this page with https:// instead: the server needs --self-signed or a certificate.',
  'no-webrtc': () => 'This browser does not support video calls.',
  // Photos (photos/errors.py codes)
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
  // Gallery, live view, connection test
  'gallery-unavailable': () => 'The server doesn’t offer a gallery of calls.',
  'gallery-private': () =>
    'Calls are private: this server shows them only on its own computer, or to a signed-in link. '
    + 'Ask whoever runs it for a link with a token.',
  'no-such-call': () => 'That call is not in the gallery any more.',
  'delete-unavailable': () => 'This server doesn’t allow deleting calls.',
  'call-in-progress': () => 'The call is still going on; it can be deleted once it has ended.',
  'not-allowed': () => 'You may not do that with this call.',
  'server-error': () => 'The server ran into a problem. Please try again.',
  'live-unavailable': () => 'This call can’t be watched live.',
  'live-failed': () => 'The live view could not start. Please try again.',
  'test-unavailable': () => 'This server has no connection test.',
});

/**
 * Call endings that are a normal part of calling, shown as information
 * rather than as errors.
 */
const NORMAL_ENDINGS = Object.freeze([
  'hung-up', 'hung-up-here', 'declined', 'no-answer', 'busy', 'bot-hangup', 'call-lost', 'server-restart',
]);

/**
 * Whether an ending is a normal one ("bob hung up") or a failure.
 * @param {string} reason
 * @returns {'info' | 'error'}
 */
export function endingKind(reason) {
  return NORMAL_ENDINGS.includes(reason) ? 'info' : 'error';
}

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
