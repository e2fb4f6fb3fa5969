/**
 * The call on the stage: its title and state, the videos, the recording
 * mark, what happened (a notice), and a summary once it is over.
 *
 * Layout: the other side's video large with your camera small in a corner;
 * when the other side sends no video (the recording bot by default) your own
 * camera is shown large instead, so a call is never a black void.
 *
 * The state pill is a polite live region that changes only when the state
 * does; the running time is a separate `role="timer"` element, which screen
 * readers do not announce on every tick.
 */

import { formatDuration, setText, show } from '../dom.js';
import { isLive } from '../state.js';
import { watch } from '../store.js';

/**
 * @typedef {import('../state.js').AppState} AppState
 * @typedef {import('../state.js').CallView} CallView
 * @typedef {import('../store.js').Store<AppState>} AppStore
 */

/**
 * @param {CallView} call
 * @returns {string}
 */
function stateLabel(call) {
  if (call.interrupted && isLive(call)) return 'Reconnecting…';
  switch (call.phase) {
    case 'starting': return 'Starting camera…';
    case 'ringing': return call.isBot ? 'Calling…' : `Ringing ${call.peer}…`;
    case 'connecting': return 'Connecting…';
    case 'connected': return 'Connected';
    case 'ended': return 'Call ended';
    default: return 'Call failed';
  }
}

/**
 * @param {number} n
 * @param {string} word
 */
function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * @param {object} options
 * @param {AppStore} options.store
 * @param {Record<string, HTMLElement>} options.el  by id: calls-view, call-title, call-state, call-timer,
 *   call-message, videos, remote-video, local-video, camera-off, stage-placeholder, rec-badge, rec-text,
 *   call-summary, summary-text, summary-open
 * @param {{openInGallery: (callId: string) => void}} options.actions
 */
export function createStageView({ store, el, actions }) {
  const remote = /** @type {HTMLVideoElement} */ (el['remote-video']);
  const local = /** @type {HTMLVideoElement} */ (el['local-video']);
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let ticker;
  let remoteHasVideo = false;

  el['summary-open'].addEventListener('click', () => {
    const callId = store.get().call?.callId;
    if (callId) actions.openInGallery(callId);
  });

  // Whether the other side really sends video: a live, unmuted video track
  // whose frames reach the element.
  for (const type of ['resize', 'loadeddata', 'emptied']) remote.addEventListener(type, refreshLayout);

  /** @param {MediaStream | null} stream */
  function watchRemoteTracks(stream) {
    if (!stream) return;
    const hook = (/** @type {MediaStreamTrack} */ track) => {
      for (const type of ['mute', 'unmute', 'ended']) track.addEventListener(type, refreshLayout);
    };
    stream.getVideoTracks().forEach(hook);
    stream.addEventListener('addtrack', (event) => {
      hook(event.track);
      refreshLayout();
    });
  }

  function refreshLayout() {
    const call = store.get().call;
    const stream = /** @type {MediaStream | null} */ (remote.srcObject);
    remoteHasVideo = Boolean(
      stream && stream.getVideoTracks().some((t) => t.readyState === 'live' && !t.muted) && remote.videoWidth > 0,
    );
    let layout = 'idle';
    if (call && isLive(call) && call.phase !== 'starting') layout = remoteHasVideo ? 'remote-main' : 'self-main';
    el.videos.dataset.layout = layout;
    show(remote, layout === 'remote-main');
    show(local, layout !== 'idle' && Boolean(call?.camOn) && call?.localStream !== null);
    show(el['camera-off'], layout !== 'idle' && call !== null && !call.camOn);
    show(el['stage-placeholder'], layout === 'idle');
  }

  /** @param {HTMLVideoElement} video */
  function playQuietly(video) {
    video.play().catch(() => {
      // Autoplay refused; the video starts on the next gesture.
    });
  }

  watch(store, (s) => s.call?.localStream ?? null, (stream) => {
    if (local.srcObject !== stream) local.srcObject = stream;
    if (stream) playQuietly(local);
    refreshLayout();
  });

  watch(store, (s) => s.call?.remoteStream ?? null, (stream) => {
    if (remote.srcObject !== stream) remote.srcObject = stream;
    watchRemoteTracks(stream);
    if (stream) playQuietly(remote);
    refreshLayout();
  });

  watch(store, (s) => s.call, (call) => {
    // On a phone the stage comes first while there is a call to show (or
    // its summary), the list of people first otherwise.
    el['calls-view'].dataset.call = call === null ? 'none' : isLive(call) || call.phase === 'starting' ? 'live' : 'over';
    if (!call) {
      setText(el['call-title'], 'No call yet');
      show(el['call-state'], false);
      el['call-state'].dataset.state = 'idle';
    } else {
      setText(el['call-title'], `Call with ${call.peer}`);
      show(el['call-state'], true);
      el['call-state'].dataset.state = call.interrupted && isLive(call) ? 'reconnecting' : call.phase;
      setText(el['call-state'], stateLabel(call));
    }
    const notice = call?.notice ?? null;
    show(el['call-message'], notice !== null);
    setText(el['call-message'], notice?.text || '');
    el['call-message'].dataset.kind = notice?.kind || 'info';
    el['call-message'].setAttribute('role', notice?.kind === 'error' ? 'alert' : 'status');
    renderClock(call);
    renderSummary(call);
    refreshLayout();
  });

  /** @param {CallView | null} call */
  function renderClock(call) {
    clearInterval(ticker);
    const running = call !== null && call.phase === 'connected' && call.connectedAt !== null;
    show(el['call-timer'], running);
    const recMark = call !== null && call.isBot && running && call.recording !== null;
    show(el['rec-badge'], recMark);
    if (call) el['rec-badge'].dataset.recording = String(call.recording);
    if (!running || !call || call.connectedAt === null) return;
    const since = call.connectedAt;
    const tick = () => {
      const elapsed = formatDuration((Date.now() - since) / 1000);
      setText(el['call-timer'], elapsed);
      setText(el['rec-text'], call.recording ? `REC ${elapsed}` : 'Not recorded');
    };
    tick();
    ticker = setInterval(tick, 1000);
  }

  /** @param {CallView | null} call */
  function renderSummary(call) {
    const over = call !== null && !isLive(call) && call.phase !== 'starting' && call.connectedAt !== null;
    show(el['call-summary'], over);
    if (!over || !call || call.connectedAt === null) return;
    const seconds = ((call.endedAt ?? Date.now()) - call.connectedAt) / 1000;
    const parts = [`${formatDuration(seconds)} with ${call.peer}`];
    if (call.isBot) parts.push(call.recording ? 'recorded' : 'not recorded');
    if (call.photosSent) parts.push(`${plural(call.photosSent, 'photo')} sent`);
    if (call.photosReceived) parts.push(`${plural(call.photosReceived, 'photo')} received`);
    setText(el['summary-text'], `${parts.join(' · ')}.`);
    show(el['summary-open'], call.isBot && call.callId !== null);
  }
}
