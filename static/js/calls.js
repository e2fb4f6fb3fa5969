/**
 * The call controller: starts, answers and ends calls, and runs what goes on
 * inside one (media controls, photos, the chat with the bot). It owns the
 * live objects (peer connection, channels, tracks) and writes what the page
 * shows into the store; views read it from there.
 */

import { uploadPhotoCopy } from './api.js';
import { createCall } from './call.js';
import { listDevices, openCameraAndMicrophone, openTrack } from './devices.js';
import { formatBytes } from './dom.js';
import { describeError, endingKind, errorCode } from './errors.js';
import { createPhotoLink, snapshot } from './photos.js';
import { isLive } from './state.js';

/**
 * @typedef {import('./state.js').AppState} AppState
 * @typedef {import('./state.js').CallView} CallView
 * @typedef {import('./state.js').PhotoTile} PhotoTile
 * @typedef {import('./store.js').Store<AppState>} AppStore
 * @typedef {import('./call.js').Call} Call
 * @typedef {import('./signaling.js').Message} Message
 * @typedef {import('./session.js').StatusChange} StatusChange
 *
 * @typedef {object} CallController
 * @property {(peer: string) => Promise<void>} call
 * @property {() => Promise<void>} accept
 * @property {() => void} decline
 * @property {() => void} hangup
 * @property {() => Promise<void>} toggleMic
 * @property {() => Promise<void>} toggleCamera
 * @property {(kind: 'audio' | 'video', id: string) => Promise<void>} chooseDevice
 * @property {() => Promise<void>} refreshDevices
 * @property {() => Promise<void>} sendSnapshot
 * @property {(text: string) => boolean} sendChat  false if it could not be sent
 * @property {(message: Message) => void} onSignal
 * @property {(change: StatusChange) => void} onSession
 * @property {() => void} endEverything  sign-out or page hide
 */

/** Chat lines kept on the page. */
const CHAT_LIMIT = 200;
/** Longest chat line shown (a bot may send up to 256 KiB in one message). */
const CHAT_CHARS = 4000;
/** The label of the bot's message channel (peer/channels.py DEFAULT_LABEL). */
const CHAT_LABEL = 'chat';

/**
 * @param {object} options
 * @param {AppStore} options.store
 * @param {(message: object) => void} options.send  signaling
 * @param {() => HTMLVideoElement} options.snapshotSource  the element showing the camera
 * @returns {CallController}
 */
export function createCallController({ store, send, snapshotSource }) {
  /** @type {Call | null} */
  let current = null;
  /** @type {import('./photos.js').PhotoLink | null} */
  let photoLink = null;
  /** @type {RTCDataChannel | null} */
  let chatChannel = null;
  /** @type {{from: string, offer: RTCSessionDescriptionInit, candidates: (RTCIceCandidateInit | null)[]} | null} */
  let incoming = null;
  let serial = 0;
  let chatSeq = 0;
  /** When the bot last ended a call (Date.now()), to tell a server restart. */
  let botClosedAt = 0;

  // -- store helpers -----------------------------------------------------------

  /** @param {Partial<CallView>} patch */
  function patchCall(patch) {
    const call = store.get().call;
    if (call) store.update({ call: { ...call, ...patch } });
  }

  /** @param {Call} owner */
  function isCurrent(owner) {
    return current === owner && isLive(store.get().call);
  }

  /** @param {object} message */
  function trySend(message) {
    try {
      send(message);
    } catch {
      // Signed out: nothing to tell the other side.
    }
  }

  // -- starting and answering ----------------------------------------------------

  /**
   * @param {string} peer
   * @param {'caller' | 'callee'} role
   */
  function newCallView(peer, role) {
    // Object URLs of the previous call's photos are released with it.
    for (const tile of store.get().photos) URL.revokeObjectURL(tile.url);
    serial += 1;
    store.update({
      call: {
        serial,
        peer,
        role,
        isBot: peer === store.get().botName,
        phase: 'starting',
        interrupted: false,
        notice: null,
        connectedAt: null,
        endedAt: null,
        callId: null,
        recording: null,
        localStream: null,
        remoteStream: null,
        micOn: true,
        camOn: true,
        photosReady: false,
        snapshotBusy: false,
        photosSent: 0,
        photosReceived: 0,
      },
      photos: [],
      newPhoto: null,
      photoStatus: null,
      chat: { channel: 'none', entries: [] },
    });
  }

  /**
   * The camera and microphone for the call on the stage; null if they could
   * not be opened (the call failed) or the call was given up meanwhile.
   * @returns {Promise<MediaStream | null>}
   */
  async function openMedia() {
    const { audioId, videoId } = store.get().devices;
    const mine = serial;
    try {
      const stream = await openCameraAndMicrophone({ audioId, videoId });
      void refreshDevices();
      const view = store.get().call;
      if (view?.serial !== mine || view.phase !== 'starting') {
        for (const track of stream.getTracks()) track.stop();
        return null;
      }
      return stream;
    } catch (err) {
      const code = errorCode(err);
      patchCall({ phase: 'failed', endedAt: Date.now(), notice: { kind: 'error', text: describeError(code) } });
      return null;
    }
  }

  /** @param {string} peer */
  async function call(peer) {
    const state = store.get();
    if (isLive(state.call) || !state.me) return;
    decline();
    newCallView(peer, 'caller');
    const stream = await openMedia();
    if (!stream) return;
    const owner = begin(peer, 'caller', stream);
    try {
      await owner.start();
    } catch (err) {
      owner.fail(errorCode(err));
    }
  }

  async function accept() {
    if (!incoming) return;
    const { from, offer, candidates } = incoming;
    incoming = null;
    store.update({ incoming: null });
    newCallView(from, 'callee');
    const stream = await openMedia();
    if (!stream) {
      trySend({ type: 'close', otherUsername: from });
      return;
    }
    const owner = begin(from, 'callee', stream);
    try {
      for (const candidate of candidates) await owner.addRemoteCandidate(candidate);
      await owner.accept(offer);
    } catch (err) {
      trySend({ type: 'close', otherUsername: from });
      owner.fail(errorCode(err));
    }
  }

  function decline() {
    if (!incoming) return;
    trySend({ type: 'close', otherUsername: incoming.from });
    dismissIncoming();
  }

  function dismissIncoming() {
    incoming = null;
    if (store.get().incoming) store.update({ incoming: null });
  }

  /**
   * @param {string} peer
   * @param {'caller' | 'callee'} role
   * @param {MediaStream} stream
   * @returns {Call}
   */
  function begin(peer, role, stream) {
    const isBot = peer === store.get().botName;
    const owner = createCall({
      peer,
      role,
      localStream: stream,
      rtcConfig: store.get().rtcConfig,
      send: (message) => send(message),
      // The bot talks on an application channel (peer/channels.py); a
      // person's page has no use for one.
      channels: isBot ? ['photos', CHAT_LABEL] : ['photos'],
      events: {
        onState: (state, info) => {
          if (current === owner) onCallState(owner, state, info);
        },
        onRemoteStream: (remote) => {
          if (current === owner && store.get().call?.remoteStream !== remote) patchCall({ remoteStream: remote });
        },
        onChannel: (channel) => {
          if (current !== owner) return;
          if (channel.label === 'photos') attachPhotos(channel, owner);
          else attachChat(channel, owner);
        },
      },
    });
    current = owner;
    patchCall({ localStream: stream, phase: role === 'caller' ? 'ringing' : 'connecting' });
    return owner;
  }

  /**
   * @param {Call} owner
   * @param {import('./call.js').CallState} state
   * @param {{reason?: string}} info
   */
  function onCallState(owner, state, info) {
    const view = store.get().call;
    if (!view) return;
    if (state === 'connected') {
      patchCall({ phase: 'connected', interrupted: false, connectedAt: view.connectedAt ?? Date.now(), notice: null });
    } else if (state === 'ended' || state === 'failed') {
      let reason = info.reason || '';
      // A dead signaling link explains a dying peer connection better than ICE.
      if (reason === 'ice-failed' && store.get().connection === 'reconnecting') reason = 'call-lost';
      finish(owner, state, reason);
    } else if (state === 'connecting' && info.reason === 'media-interrupted') {
      patchCall({ interrupted: true, notice: { kind: 'info', text: describeError('media-interrupted') } });
    } else {
      patchCall({ phase: state });
    }
  }

  /**
   * @param {Call} owner
   * @param {'ended' | 'failed'} state
   * @param {string} reason
   */
  function finish(owner, state, reason) {
    const view = store.get().call;
    if (current !== owner || !view) return;
    const kind = endingKind(reason);
    const quiet = reason === 'hung-up-here';
    for (const track of view.localStream?.getTracks() || []) track.stop();
    photoLink?.close();
    photoLink = null;
    chatChannel = null;
    patchCall({
      phase: kind === 'info' ? 'ended' : state,
      interrupted: false,
      endedAt: Date.now(),
      localStream: null,
      remoteStream: null,
      photosReady: false,
      notice: quiet ? null : { kind, text: describeError(reason, { peer: view.peer }) },
    });
    const chat = store.get().chat;
    store.update({ photoStatus: null, chat: { ...chat, channel: chat.channel === 'none' ? 'none' : 'closed' } });
  }

  function hangup() {
    if (current && isLive(store.get().call)) {
      current.hangup('hung-up-here');
    } else if (store.get().call?.phase === 'starting') {
      // Still opening the camera: nothing was sent yet.
      patchCall({ phase: 'ended', endedAt: Date.now() });
    }
  }

  function endEverything() {
    dismissIncoming();
    if (current && isLive(store.get().call)) current.hangup('hung-up-here');
  }

  // -- signaling -----------------------------------------------------------------

  /** @param {Message} message */
  function onSignal(message) {
    const from = typeof message.username === 'string' ? message.username : '';
    const view = store.get().call;
    const live = isLive(view);
    const withPeer = Boolean(current && view && view.peer === from);
    switch (message.type) {
      case 'offer':
        if (from && message.offer) onOffer(from, message.offer);
        break;
      case 'answer':
        if (withPeer && live && current && message.answer) {
          const owner = current;
          owner.handleAnswer(message.answer).catch((err) => owner.fail(errorCode(err)));
        }
        break;
      case 'candidate':
        if (withPeer && live && current) {
          void current.addRemoteCandidate(message.candidate ?? null);
        } else if (incoming && incoming.from === from) {
          incoming.candidates.push(message.candidate ?? null);
        }
        break;
      case 'close':
        if (incoming && incoming.from === from) {
          dismissIncoming();
        } else if (withPeer && live && current) {
          const reason = current.answered() ? 'hung-up' : 'declined';
          const byBot = from === store.get().botName && current.answered();
          if (byBot) botClosedAt = Date.now();
          current.hangup(byBot ? 'bot-hangup' : reason, { notify: false });
        }
        break;
      case 'call-info':
        // The bot's announcement after its answer: the call's gallery entry
        // and whether it records.
        if (withPeer && view) {
          patchCall({
            callId: typeof message.callId === 'string' ? message.callId : view.callId,
            recording: typeof message.recording === 'boolean' ? message.recording : view.recording,
          });
        }
        break;
      case 'error':
        onServerError(message, from);
        break;
      default:
        break;
    }
  }

  /**
   * @param {string} from
   * @param {RTCSessionDescriptionInit} offer
   */
  function onOffer(from, offer) {
    if (isLive(store.get().call) || incoming) {
      // Busy: say no without bothering the person.
      trySend({ type: 'close', otherUsername: from });
      return;
    }
    incoming = { from, offer, candidates: [] };
    store.update({ incoming: { from } });
  }

  /**
   * @param {Message} message
   * @param {string} from  set when the bot sent it
   */
  function onServerError(message, from) {
    const code = String(message.code || 'unknown');
    const view = store.get().call;
    if (current && isLive(view) && view && (code === 'user-offline' || from === view.peer)) {
      current.fail(code);
      return;
    }
    // Late replies to a call that is already over (e.g. one user-offline per
    // trickled candidate) say nothing new.
    if (code === 'user-offline' || (view && from === view.peer)) return;
    store.update({ banner: { kind: 'error', text: describeError(code, { detail: message.message }) } });
  }

  /** @param {StatusChange} change */
  function onSession(change) {
    const view = store.get().call;
    const live = isLive(view);
    if (change.status === 'reconnecting') {
      // A server that shuts down ends the bot's calls, then closes the
      // socket with 1001: the close just before says why the call ended.
      if (change.restarting && !live && view?.isBot && Date.now() - botClosedAt < 3000) {
        patchCall({ notice: { kind: 'info', text: describeError('server-restart') } });
      }
      if (live) {
        patchCall({ interrupted: true, notice: { kind: 'info', text: 'Reconnecting to the server… the call goes on meanwhile.' } });
      }
      return;
    }
    if (change.status === 'online' && change.resumed) {
      if (live) patchCall({ interrupted: false, notice: null });
      return;
    }
    // A plain login after a drop, or signed out: calls did not survive.
    if (change.callLost || change.status === 'signed-out') {
      if (incoming) dismissIncoming();
      if (current && live && view) {
        // The bot's side ended with the old connection; a person's page is
        // told, in case its own signaling survived.
        current.hangup('call-lost', { notify: !view.isBot && change.status === 'online' });
      }
    }
  }

  // -- media controls ------------------------------------------------------------

  async function toggleMic() {
    const view = store.get().call;
    if (!current || !view || !isLive(view)) return;
    const track = view.localStream?.getAudioTracks()[0];
    if (!track) return;
    const on = !view.micOn;
    // A disabled track sends silence (W3C mediacapture-main, section 4.3.1):
    // the other side's timeline goes on, and the bot's recording has silence
    // where the person was muted.
    track.enabled = on;
    patchCall({ micOn: on });
  }

  async function toggleCamera() {
    const view = store.get().call;
    if (!current || !view || !isLive(view) || !view.localStream) return;
    const owner = current;
    if (view.camOn) {
      await owner.replaceTrack('video', null);
      const audio = view.localStream.getAudioTracks();
      // Stopping the track turns the camera (and its light) off.
      for (const track of view.localStream.getVideoTracks()) track.stop();
      patchCall({ camOn: false, localStream: new MediaStream(audio) });
      return;
    }
    let track;
    try {
      track = await openTrack('video', store.get().devices.videoId);
    } catch (err) {
      patchCall({ notice: { kind: 'error', text: describeError(errorCode(err)) } });
      return;
    }
    if (!isCurrent(owner)) {
      track.stop();
      return;
    }
    await owner.replaceTrack('video', track);
    const stream = store.get().call?.localStream;
    patchCall({ camOn: true, localStream: new MediaStream([...(stream?.getAudioTracks() || []), track]) });
  }

  /**
   * Uses another camera or microphone, now if in a call, and for next calls.
   * @param {'audio' | 'video'} kind
   * @param {string} id
   */
  async function chooseDevice(kind, id) {
    const devices = store.get().devices;
    store.update({ devices: { ...devices, [kind === 'audio' ? 'audioId' : 'videoId']: id || null } });
    const view = store.get().call;
    if (!current || !view || !isLive(view) || !view.localStream) return;
    if (kind === 'video' && !view.camOn) return; // used when the camera comes back on
    const owner = current;
    const old = view.localStream.getTracks().filter((t) => t.kind === kind);
    if (kind === 'video') {
      // The old camera is released first: phones cannot open their front
      // and back cameras at once. The other side sees no video meanwhile.
      await owner.replaceTrack('video', null);
      for (const t of old) t.stop();
    }
    let track;
    try {
      track = await openTrack(kind, id || null);
    } catch (err) {
      const now = store.get().call;
      if (kind === 'video' && isCurrent(owner) && now?.localStream) {
        patchCall({ camOn: false, localStream: new MediaStream(now.localStream.getAudioTracks()) });
      }
      patchCall({ notice: { kind: 'error', text: describeError(errorCode(err)) } });
      return;
    }
    const now = store.get().call;
    if (!isCurrent(owner) || !now?.localStream) {
      track.stop();
      return;
    }
    if (kind === 'audio') track.enabled = now.micOn;
    await owner.replaceTrack(kind, track);
    for (const t of old) t.stop();
    const keep = now.localStream.getTracks().filter((t) => t.kind !== kind);
    patchCall({ localStream: new MediaStream([...keep, track]) });
  }

  async function refreshDevices() {
    try {
      const list = await listDevices();
      store.update({ devices: { ...store.get().devices, audio: list.audio, video: list.video } });
    } catch {
      // Keep the last list.
    }
  }

  // -- photos ----------------------------------------------------------------------

  /**
   * @param {RTCDataChannel} channel
   * @param {Call} owner
   */
  function attachPhotos(channel, owner) {
    const link = createPhotoLink(channel, owner.pc, {
      onPhoto: (photo) => {
        if (current !== owner) return;
        const tile = addTile({
          blob: photo.blob,
          name: photo.name,
          caption: `From ${owner.peer}`,
          direction: 'received',
          state: 'received',
          sha256: photo.sha256,
          from: owner.peer,
        });
        const view = store.get().call;
        if (view) patchCall({ photosReceived: view.photosReceived + 1 });
        store.update({ newPhoto: tile });
      },
    });
    photoLink = link;
    const ready = () => {
      if (current === owner) patchCall({ photosReady: channel.readyState === 'open' });
    };
    channel.addEventListener('open', ready);
    channel.addEventListener('close', ready);
    ready();
  }

  /**
   * @param {{blob: Blob, name: string, caption: string, direction: 'sent' | 'received', state: string, sha256: string, from: string}} photo
   * @returns {PhotoTile}
   */
  function addTile({ blob, ...rest }) {
    const tile = { ...rest, key: `${rest.direction}-${rest.sha256}-${Date.now()}`, url: URL.createObjectURL(blob) };
    store.update({ photos: [tile, ...store.get().photos] });
    return tile;
  }

  /**
   * @param {string} key
   * @param {string} caption
   * @param {string} state
   */
  function setTile(key, caption, state) {
    store.update({ photos: store.get().photos.map((t) => (t.key === key ? { ...t, caption, state } : t)) });
  }

  /**
   * @param {import('./state.js').PhotoStatus['state']} state
   * @param {number} fraction
   * @param {string} text
   */
  function setPhotoStatus(state, fraction, text) {
    store.update({ photoStatus: { state, fraction, text } });
  }

  async function sendSnapshot() {
    const view = store.get().call;
    if (!current || !photoLink || !view || view.snapshotBusy || !view.photosReady) return;
    const owner = current;
    const link = photoLink;
    const peer = view.peer;
    patchCall({ snapshotBusy: true });
    setPhotoStatus('sending', 0, 'Taking a snapshot…');
    /** @param {() => void} fn */
    const ifCurrent = (fn) => {
      if (current === owner) fn();
    };
    try {
      const photo = await snapshot(snapshotSource());
      const tile = addTile({
        blob: photo.blob, name: photo.name, caption: 'Sending…', direction: 'sent', state: 'pending', sha256: photo.sha256, from: store.get().me || '',
      });
      const sizeText = formatBytes(photo.bytes.byteLength);
      setPhotoStatus('sending', 0, `Sending snapshot (${sizeText})…`);
      const saved = await link.send(photo, (fraction) => ifCurrent(() => {
        setPhotoStatus('sending', fraction, fraction < 1
          ? `Sending snapshot (${sizeText})… ${Math.round(fraction * 100)}%`
          : 'Waiting for confirmation…');
      }));
      if (current !== owner) return;
      const now = store.get().call;
      if (now) patchCall({ photosSent: now.photosSent + 1 });
      if (view.isBot) {
        setPhotoStatus('saved', 1, `Saved by ${peer} ✓ (${formatBytes(saved.size ?? photo.bytes.byteLength)})`);
        setTile(tile.key, `Saved by ${peer} ✓`, 'saved');
        return;
      }
      setPhotoStatus('delivered', 1, `Delivered to ${peer} ✓ · saving a copy on the server…`);
      setTile(tile.key, `Delivered to ${peer} ✓`, 'delivered');
      try {
        const { me, uploadToken } = store.get();
        await uploadPhotoCopy({ ...photo, blob: photo.blob, from: me || '', to: peer, uploadToken });
        ifCurrent(() => {
          setPhotoStatus('saved', 1, `Delivered to ${peer} ✓ · copy saved on the server ✓`);
          setTile(tile.key, `Delivered to ${peer} ✓ · server copy ✓`, 'saved');
        });
      } catch (err) {
        ifCurrent(() => setPhotoStatus('copy-failed', 1,
          `Delivered to ${peer} ✓ · no server copy: ${describeError(errorCode(err))}`));
      }
    } catch (err) {
      ifCurrent(() => setPhotoStatus('error', 0, `The snapshot was not sent: ${describeError(errorCode(err), { peer })}`));
    } finally {
      ifCurrent(() => patchCall({ snapshotBusy: false }));
    }
  }

  // -- chat with the bot -----------------------------------------------------------

  /**
   * @param {RTCDataChannel} channel
   * @param {Call} owner
   */
  function attachChat(channel, owner) {
    // The first application channel carries the chat; the bot answers on
    // the first one the caller opened (peer/channels.py).
    if (chatChannel && chatChannel.readyState !== 'closed') {
      channel.addEventListener('message', (event) => onChatMessage(owner, event.data));
      return;
    }
    chatChannel = channel;
    channel.binaryType = 'arraybuffer';
    const sync = () => {
      if (current !== owner) return;
      const chat = store.get().chat;
      const state = channel.readyState === 'open' ? 'open' : channel.readyState === 'connecting' ? 'connecting' : 'closed';
      if (chat.channel !== state) store.update({ chat: { ...chat, channel: state } });
    };
    channel.addEventListener('open', sync);
    channel.addEventListener('close', sync);
    channel.addEventListener('message', (event) => onChatMessage(owner, event.data));
    sync();
  }

  /**
   * @param {Call} owner
   * @param {string | ArrayBuffer} data
   */
  function onChatMessage(owner, data) {
    if (current !== owner) return;
    const text = typeof data === 'string' ? data : `(binary message, ${formatBytes(data.byteLength)})`;
    addChat('peer', text.length > CHAT_CHARS ? `${text.slice(0, CHAT_CHARS)}…` : text);
  }

  /**
   * @param {'me' | 'peer'} from
   * @param {string} text
   */
  function addChat(from, text) {
    chatSeq += 1;
    const chat = store.get().chat;
    const entries = [...chat.entries, { seq: chatSeq, from, text }].slice(-CHAT_LIMIT);
    store.update({ chat: { ...chat, entries } });
  }

  /** @param {string} text */
  function sendChat(text) {
    const message = text.trim();
    if (!message || !chatChannel || chatChannel.readyState !== 'open') return false;
    try {
      chatChannel.send(message);
    } catch (err) {
      patchCall({ notice: { kind: 'error', text: describeError(errorCode(err)) } });
      return false;
    }
    addChat('me', message);
    return true;
  }

  navigator.mediaDevices?.addEventListener('devicechange', () => void refreshDevices());

  return {
    call,
    accept,
    decline,
    hangup,
    toggleMic,
    toggleCamera,
    chooseDevice,
    refreshDevices,
    sendSnapshot,
    sendChat,
    onSignal,
    onSession,
    endEverything,
  };
}
