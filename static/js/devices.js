/**
 * Cameras and microphones: opening them (errors as AppError codes named
 * after getUserMedia's DOMException names), and listing them for the
 * device choice.
 */

import { AppError } from './errors.js';

/**
 * @typedef {object} DeviceOption
 * @property {string} id  deviceId
 * @property {string} label  the browser's name for it (empty before permission)
 *
 * @typedef {object} DeviceList
 * @property {DeviceOption[]} audio
 * @property {DeviceOption[]} video
 */

const VIDEO_IDEAL = Object.freeze({ width: Object.freeze({ ideal: 1280 }), height: Object.freeze({ ideal: 720 }) });

/** @throws {AppError} when the page cannot use media at all */
function requireMedia() {
  // getUserMedia exists only in a secure context (https, or localhost):
  // W3C Media Capture, section 9.2 ([SecureContext] on mediaDevices).
  if (!window.isSecureContext) throw new AppError('insecure-context');
  if (!navigator.mediaDevices?.getUserMedia || typeof RTCPeerConnection === 'undefined') {
    throw new AppError('no-webrtc');
  }
}

/**
 * @param {MediaStreamConstraints} constraints
 * @returns {Promise<MediaStream>}
 */
async function open(constraints) {
  requireMedia();
  try {
    return await navigator.mediaDevices.getUserMedia(constraints);
  } catch (err) {
    const name = err && typeof err === 'object' && 'name' in err ? String(err.name) : 'NotReadableError';
    throw new AppError(name, String(err));
  }
}

/**
 * @param {string | null | undefined} id
 * @param {object} base
 * @returns {MediaTrackConstraints | boolean}
 */
function pick(id, base = {}) {
  return id ? { ...base, deviceId: { exact: id } } : (Object.keys(base).length ? base : true);
}

/**
 * The camera and microphone (the chosen ones, or the defaults).
 * @param {{audioId?: string | null, videoId?: string | null}} [choice]
 * @returns {Promise<MediaStream>}
 */
export function openCameraAndMicrophone({ audioId, videoId } = {}) {
  return open({ audio: pick(audioId), video: pick(videoId, VIDEO_IDEAL) });
}

/**
 * One new track of `kind` from the chosen device.
 * @param {'audio' | 'video'} kind
 * @param {string | null} id
 * @returns {Promise<MediaStreamTrack>}
 */
export async function openTrack(kind, id) {
  const stream = await open(kind === 'audio' ? { audio: pick(id) } : { video: pick(id, VIDEO_IDEAL) });
  return stream.getTracks()[0];
}

/**
 * The cameras and microphones the browser lists (labels appear once the
 * page may use them).
 * @returns {Promise<DeviceList>}
 */
export async function listDevices() {
  if (!navigator.mediaDevices?.enumerateDevices) return { audio: [], video: [] };
  const devices = await navigator.mediaDevices.enumerateDevices();
  /** @param {MediaDeviceKind} kind */
  const of = (kind) =>
    devices
      .filter((d) => d.kind === kind && d.deviceId && d.deviceId !== 'default' && d.deviceId !== 'communications')
      .map((d, i) => ({ id: d.deviceId, label: d.label || `${kind === 'audioinput' ? 'Microphone' : 'Camera'} ${i + 1}` }));
  return { audio: of('audioinput'), video: of('videoinput') };
}
