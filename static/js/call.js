/**
 * One call: an RTCPeerConnection, trickle ICE over signaling, and its data
 * channels. The caller creates the channels (`photos`, and `chat` in a call
 * with the bot), so they are negotiated in the offer; channels the other
 * side opens arrive through `onChannel` too.
 */

import { AppError } from './errors.js';

/**
 * @typedef {'ringing' | 'connecting' | 'connected' | 'failed' | 'ended'} CallState
 *   ringing: the caller waits for an answer
 *
 * @typedef {object} CallEvents
 * @property {(state: CallState, info: {reason?: string}) => void} [onState]
 * @property {(stream: MediaStream) => void} [onRemoteStream]
 * @property {(channel: RTCDataChannel) => void} [onChannel]
 *
 * @typedef {object} Call
 * @property {string} peer
 * @property {'caller' | 'callee'} role
 * @property {RTCPeerConnection} pc
 * @property {() => CallState} state
 * @property {() => boolean} answered  the remote description is set
 * @property {() => Promise<void>} start  caller: create and send the offer
 * @property {(offer: RTCSessionDescriptionInit) => Promise<void>} accept  callee: answer an offer
 * @property {(answer: RTCSessionDescriptionInit) => Promise<void>} handleAnswer
 * @property {(candidate: RTCIceCandidateInit | null) => Promise<void>} addRemoteCandidate
 * @property {(kind: 'audio' | 'video', track: MediaStreamTrack | null) => Promise<void>} replaceTrack
 *   what this side sends; null sends nothing (no packets at all)
 * @property {(reason?: string, options?: {notify?: boolean}) => void} hangup
 * @property {(reason: string) => void} fail
 */

/** Milliseconds a caller waits for an answer before giving up. */
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
 * @param {string[]} [options.channels]  labels the caller opens (default `photos`)
 * @param {CallEvents} [options.events]
 * @returns {Call}
 */
export function createCall({ peer, role, localStream, rtcConfig, send, channels = ['photos'], events = {} }) {
  const pc = new RTCPeerConnection(rtcConfig);
  /** @type {CallState} */
  let state = 'connecting';
  /** @type {(RTCIceCandidateInit | null)[]} */
  const pendingCandidates = [];
  let remoteDescriptionSet = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let answerTimer;
  /** @type {Record<string, RTCRtpSender>} */
  const senders = {};

  for (const track of localStream.getTracks()) senders[track.kind] = pc.addTrack(track, localStream);

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

  pc.addEventListener('datachannel', (event) => events.onChannel?.(event.channel));

  pc.addEventListener('connectionstatechange', () => {
    if (isOver()) return;
    switch (pc.connectionState) {
      case 'connected':
        setState('connected', {});
        break;
      case 'disconnected':
        // ICE consent checks are failing; it may come back (RFC 7675).
        setState('connecting', { reason: 'media-interrupted' });
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
   * @param {{reason?: string}} info
   */
  function setState(next, info) {
    state = next;
    events.onState?.(next, info);
  }

  /** @param {object} message */
  function trySend(message) {
    try {
      send(message);
    } catch {
      // Signaling is gone; the page reports that separately.
    }
  }

  async function start() {
    for (const label of channels) events.onChannel?.(pc.createDataChannel(label, { ordered: true }));
    await pc.setLocalDescription(await pc.createOffer());
    send({ type: 'offer', otherUsername: peer, offer: pc.localDescription?.toJSON() });
    if (!remoteDescriptionSet && !isOver()) setState('ringing', {});
    answerTimer = setTimeout(() => {
      if (!remoteDescriptionSet && !isOver()) {
        trySend({ type: 'close', otherUsername: peer });
        fail('no-answer');
      }
    }, ANSWER_TIMEOUT_MS);
  }

  /** @param {RTCSessionDescriptionInit} offer */
  async function accept(offer) {
    setState('connecting', {});
    await pc.setRemoteDescription(offer);
    await remoteDescriptionApplied();
    await pc.setLocalDescription(await pc.createAnswer());
    send({ type: 'answer', otherUsername: peer, answer: pc.localDescription?.toJSON() });
  }

  /** @param {RTCSessionDescriptionInit} answer */
  async function handleAnswer(answer) {
    if (isOver() || role !== 'caller' || remoteDescriptionSet) return;
    clearTimeout(answerTimer);
    setState('connecting', {});
    await pc.setRemoteDescription(answer);
    await remoteDescriptionApplied();
  }

  /** Candidates that came before the remote description are applied now. */
  async function remoteDescriptionApplied() {
    remoteDescriptionSet = true;
    for (const candidate of pendingCandidates.splice(0)) await applyCandidate(candidate);
  }

  /** @param {RTCIceCandidateInit | null} candidate */
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

  /**
   * @param {'audio' | 'video'} kind
   * @param {MediaStreamTrack | null} track
   */
  async function replaceTrack(kind, track) {
    const sender = senders[kind];
    if (!sender) throw new AppError('no-sender');
    // replaceTrack needs no renegotiation (W3C webrtc, section 5.2); with
    // null the sender stops sending RTP for this kind until a track returns.
    await sender.replaceTrack(track);
  }

  function close() {
    clearTimeout(answerTimer);
    pc.close();
  }

  function hangup(reason = 'hung-up-here', { notify = true } = {}) {
    if (isOver()) return;
    if (notify) trySend({ type: 'close', otherUsername: peer });
    close();
    setState('ended', { reason });
  }

  /** @param {string} reason */
  function fail(reason) {
    if (isOver()) return;
    close();
    setState('failed', { reason });
  }

  return {
    peer,
    role,
    pc,
    state: () => state,
    answered: () => remoteDescriptionSet,
    start,
    accept,
    handleAnswer,
    addRemoteCandidate,
    replaceTrack,
    hangup,
    fail,
  };
}
