/**
 * One call: an RTCPeerConnection, trickle ICE over signaling, and the
 * `photos` data channel. The caller creates the channel, so it is negotiated
 * in the offer and both sides (the bot or another browser) receive it.
 */

import { AppError } from './errors.js';

/**
 * @typedef {'connecting' | 'connected' | 'failed' | 'ended'} CallState
 *
 * @typedef {object} CallEvents
 * @property {(state: CallState, info: {reason?: string, label: string}) => void} [onState]
 * @property {(stream: MediaStream) => void} [onRemoteStream]
 * @property {(channel: RTCDataChannel) => void} [onChannel]
 *
 * @typedef {object} Call
 * @property {string} peer
 * @property {'caller' | 'callee'} role
 * @property {RTCPeerConnection} pc
 * @property {() => CallState} state
 * @property {() => Promise<void>} start  caller: create and send the offer
 * @property {(offer: RTCSessionDescriptionInit) => Promise<void>} accept  callee: answer an offer
 * @property {(answer: RTCSessionDescriptionInit) => Promise<void>} handleAnswer
 * @property {(candidate: RTCIceCandidateInit | null) => Promise<void>} addRemoteCandidate
 * @property {(reason?: string, options?: {notify?: boolean}) => void} hangup
 * @property {(reason: string) => void} fail
 */

/** Seconds a caller waits for an answer before giving up. */
const ANSWER_TIMEOUT_MS = 45000;

/**
 * Creates a call with `peer`. Local tracks are added at once; nothing is sent
 * until `start` (caller) or `accept` (callee).
 *
 * @param {object} options
 * @param {string} options.peer  the other username
 * @param {'caller' | 'callee'} options.role
 * @param {MediaStream} options.localStream
 * @param {RTCConfiguration} options.rtcConfig
 * @param {(message: object) => void} options.send  sends one signaling message
 * @param {CallEvents} [options.events]
 * @returns {Call}
 */
export function createCall({ peer, role, localStream, rtcConfig, send, events = {} }) {
  const pc = new RTCPeerConnection(rtcConfig);
  /** @type {CallState} */
  let state = 'connecting';
  /** @type {(RTCIceCandidateInit | null)[]} */
  const pendingCandidates = [];
  let remoteDescriptionSet = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let answerTimer;

  for (const track of localStream.getTracks()) pc.addTrack(track, localStream);

  // Trickle ICE (RFC 8838): each candidate goes out as soon as it is found;
  // null marks the end of gathering.
  pc.addEventListener('icecandidate', (event) => {
    if (isOver()) return;
    trySend({
      type: 'candidate',
      otherUsername: peer,
      candidate: event.candidate ? event.candidate.toJSON() : null,
    });
  });

  pc.addEventListener('track', (event) => {
    const stream = event.streams[0] || new MediaStream([event.track]);
    events.onRemoteStream?.(stream);
  });

  pc.addEventListener('datachannel', (event) => {
    if (event.channel.label === 'photos') events.onChannel?.(event.channel);
  });

  pc.addEventListener('connectionstatechange', () => {
    if (isOver()) return;
    switch (pc.connectionState) {
      case 'connected':
        setState('connected', { label: 'Connected' });
        break;
      case 'disconnected':
        setState('connecting', { label: 'Reconnecting…' });
        break;
      case 'failed':
        fail('ice-failed');
        break;
      default:
        break;
    }
  });

  function isOver() {
    return state === 'ended' || state === 'failed';
  }

  /**
   * @param {CallState} next
   * @param {{reason?: string, label: string}} info
   */
  function setState(next, info) {
    state = next;
    events.onState?.(next, info);
  }

  function trySend(message) {
    try {
      send(message);
    } catch {
      // Signaling is gone; the page reports that separately.
    }
  }

  async function start() {
    setState('connecting', { label: `Calling ${peer}…` });
    const channel = pc.createDataChannel('photos', { ordered: true });
    events.onChannel?.(channel);
    await pc.setLocalDescription(await pc.createOffer());
    send({ type: 'offer', otherUsername: peer, offer: pc.localDescription.toJSON() });
    answerTimer = setTimeout(() => {
      if (!remoteDescriptionSet && !isOver()) {
        trySend({ type: 'close', otherUsername: peer });
        fail('no-answer');
      }
    }, ANSWER_TIMEOUT_MS);
  }

  async function accept(offer) {
    setState('connecting', { label: 'Connecting…' });
    await pc.setRemoteDescription(offer);
    await remoteDescriptionApplied();
    await pc.setLocalDescription(await pc.createAnswer());
    send({ type: 'answer', otherUsername: peer, answer: pc.localDescription.toJSON() });
  }

  async function handleAnswer(answer) {
    if (isOver() || role !== 'caller') return;
    clearTimeout(answerTimer);
    setState('connecting', { label: 'Connecting…' });
    await pc.setRemoteDescription(answer);
    await remoteDescriptionApplied();
  }

  /** Candidates that came before the remote description are applied now. */
  async function remoteDescriptionApplied() {
    remoteDescriptionSet = true;
    for (const candidate of pendingCandidates.splice(0)) await applyCandidate(candidate);
  }

  async function addRemoteCandidate(candidate) {
    if (isOver()) return;
    if (!remoteDescriptionSet) {
      pendingCandidates.push(candidate);
      return;
    }
    await applyCandidate(candidate);
  }

  /** @param {RTCIceCandidateInit | null} candidate */
  async function applyCandidate(candidate) {
    try {
      // No argument: end of candidates (W3C webrtc, addIceCandidate step 4).
      if (candidate === null || !candidate.candidate) await pc.addIceCandidate();
      else await pc.addIceCandidate(candidate);
    } catch (err) {
      // One unusable candidate (e.g. an mDNS name) is not a failed call.
      console.warn('ignoring remote candidate', candidate, err);
    }
  }

  function close() {
    clearTimeout(answerTimer);
    pc.close();
  }

  function hangup(reason = 'hung-up-here', { notify = true } = {}) {
    if (isOver()) return;
    if (notify) trySend({ type: 'close', otherUsername: peer });
    close();
    setState('ended', { reason, label: 'Call ended' });
  }

  function fail(reason) {
    if (isOver()) return;
    close();
    setState('failed', { reason, label: 'Call failed' });
  }

  return {
    peer,
    role,
    pc,
    state: () => state,
    start,
    accept,
    handleAnswer,
    addRemoteCandidate,
    hangup,
    fail,
  };
}

/**
 * The camera and microphone, with errors turned into AppError codes.
 * @returns {Promise<MediaStream>}
 */
export async function openCameraAndMicrophone() {
  if (!window.isSecureContext) throw new AppError('insecure-context');
  if (!navigator.mediaDevices?.getUserMedia || typeof RTCPeerConnection === 'undefined') {
    throw new AppError('no-webrtc');
  }
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: { ideal: 1280 }, height: { ideal: 720 } },
    });
  } catch (err) {
    const name = err && typeof err === 'object' && 'name' in err ? String(err.name) : 'NotReadableError';
    throw new AppError(name, String(err));
  }
}
