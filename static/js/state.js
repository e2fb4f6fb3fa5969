/**
 * The shape of the page's state (one store, js/store.js) and its start.
 * Live objects that views need to show (media streams) are in it too; the
 * peer connection and data channels stay inside the call controller.
 */

/**
 * @typedef {'calls' | 'gallery'} Tab
 *
 * @typedef {'signed-out' | 'online' | 'reconnecting'} ConnectionStatus
 *
 * @typedef {object} Notice  a sentence shown to the person
 * @property {string} text
 * @property {'info' | 'error'} kind
 *
 * @typedef {'starting' | 'ringing' | 'connecting' | 'connected' | 'ended' | 'failed'} CallPhase
 *
 * @typedef {object} CallView  the call on the stage (the last one, once over)
 * @property {number} serial  a new number per call
 * @property {string} peer
 * @property {'caller' | 'callee'} role
 * @property {boolean} isBot
 * @property {CallPhase} phase
 * @property {boolean} interrupted  media or signaling is reconnecting
 * @property {Notice | null} notice
 * @property {number | null} connectedAt  Date.now() at connect
 * @property {number | null} endedAt
 * @property {string | null} callId  the bot's call id (its gallery entry)
 * @property {boolean | null} recording  the bot records this call (null: not told)
 * @property {MediaStream | null} localStream
 * @property {MediaStream | null} remoteStream
 * @property {boolean} micOn
 * @property {boolean} camOn
 * @property {boolean} photosReady  the photos channel is open
 * @property {boolean} snapshotBusy
 * @property {number} photosSent
 * @property {number} photosReceived
 *
 * @typedef {object} PhotoStatus
 * @property {'sending' | 'delivered' | 'saved' | 'copy-failed' | 'error'} state
 * @property {number} fraction
 * @property {string} text
 *
 * @typedef {object} PhotoTile
 * @property {string} key
 * @property {string} url  an object URL of the image
 * @property {string} name  file name for saving
 * @property {string} caption
 * @property {'sent' | 'received'} direction
 * @property {string} state  pending | saved | delivered | received
 * @property {string} sha256
 * @property {string} from
 *
 * @typedef {object} ChatEntry
 * @property {number} seq
 * @property {'me' | 'peer'} from
 * @property {string} text
 *
 * @typedef {object} Chat
 * @property {'none' | 'connecting' | 'open' | 'closed'} channel
 * @property {ChatEntry[]} entries
 *
 * @typedef {object} Devices
 * @property {import('./devices.js').DeviceOption[]} audio
 * @property {import('./devices.js').DeviceOption[]} video
 * @property {string | null} audioId  the chosen microphone (null: default)
 * @property {string | null} videoId  the chosen camera
 *
 * @typedef {object} AppState
 * @property {Tab} tab
 * @property {ConnectionStatus} connection
 * @property {boolean} serverRestarting  the last drop was the server going away
 * @property {string | null} me
 * @property {string | null} uploadToken  the login reply's, for photo copies (POST /api/photos)
 * @property {string} botName
 * @property {string[]} users  others online (the bot among them)
 * @property {RTCConfiguration} rtcConfig
 * @property {string | null} loginError
 * @property {boolean} signingIn
 * @property {Notice | null} banner
 * @property {CallView | null} call
 * @property {{from: string} | null} incoming
 * @property {PhotoStatus | null} photoStatus
 * @property {PhotoTile[]} photos
 * @property {PhotoTile | null} newPhoto  a photo just received, not yet looked at
 * @property {Chat} chat
 * @property {Devices} devices
 * @property {string | null} galleryCall  the call to open in the gallery viewer
 * @property {Gallery} gallery
 *
 * @typedef {object} Gallery
 * @property {import('./api.js').CallSummary[] | null} calls  the page shown; null until loaded
 * @property {number} total  calls matching the filters (all pages)
 * @property {string[]} callers  the people in the person filter
 * @property {string | null} error  why the list could not be loaded
 * @property {boolean} loading
 * @property {string} person  '' for everyone
 * @property {string} from  'YYYY-MM-DD' or ''
 * @property {string} to  'YYYY-MM-DD' or ''
 * @property {number} page  0-based
 * @property {string | null} notice  e.g. "Call deleted."
 */

/**
 * @returns {AppState}
 */
export function initialState() {
  return {
    tab: 'calls',
    connection: 'signed-out',
    serverRestarting: false,
    me: null,
    uploadToken: null,
    botName: 'bot',
    users: [],
    rtcConfig: { iceServers: [] },
    loginError: null,
    signingIn: false,
    banner: null,
    call: null,
    incoming: null,
    photoStatus: null,
    photos: [],
    newPhoto: null,
    chat: { channel: 'none', entries: [] },
    devices: { audio: [], video: [], audioId: null, videoId: null },
    galleryCall: null,
    gallery: {
      calls: null, total: 0, callers: [], error: null, loading: false, person: '', from: '', to: '', page: 0, notice: null,
    },
  };
}

/**
 * Whether a call is going on (not over, not absent).
 * @param {CallView | null} call
 * @returns {boolean}
 */
export function isLive(call) {
  return call !== null && call.phase !== 'ended' && call.phase !== 'failed';
}
