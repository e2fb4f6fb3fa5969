/**
 * The gallery of calls with the bot: cards filtered by person and date and
 * shown a page at a time, refreshed while it is open, with downloads, delete
 * (after a confirmation) and, for a call going on, "Watch live" (WHEP) when
 * the server offers it. The viewer plays a recording (served with range
 * requests, so it seeks) and shows its photos and sampled frames.
 *
 * Filtering and paging happen on the server (GET /api/calls?limit=&offset=
 * &caller=&from=&to=): a page costs its twelve calls, however many there are.
 */

import { deleteCall, fetchCall, fetchCalls } from '../api.js';
import { clear, formatBytes, formatDuration, formatTime, h, setText, show } from '../dom.js';
import { describeError, errorCode } from '../errors.js';
import { watch } from '../store.js';
import { withToken } from '../token.js';
import { watchLive } from '../live.js';

/**
 * @typedef {import('../api.js').CallSummary} CallSummary
 * @typedef {import('../state.js').AppState} AppState
 * @typedef {import('../state.js').Gallery} Gallery
 * @typedef {import('../store.js').Store<AppState>} AppStore
 */

/** Cards per page. */
export const PAGE_SIZE = 12;
/**
 * Milliseconds between refreshes while the gallery is open: often while a
 * call is going on (its card changes), seldom otherwise (the list grows
 * with every sampled frame of every call, see the README).
 */
const REFRESH_LIVE_MS = 5000;
const REFRESH_IDLE_MS = 15000;

/** @type {Record<string, string>} */
const STATUS_WORDS = Object.freeze({
  'in-progress': 'Live now',
  interrupted: 'Interrupted',
  failed: 'Failed',
});

/**
 * A local day's start or end as an ISO instant, or undefined for no date.
 * @param {string} day  YYYY-MM-DD or ''
 * @param {'start' | 'end'} edge
 */
function dayEdge(day, edge) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return undefined;
  const when = new Date(`${day}T${edge === 'start' ? '00:00:00' : '23:59:59.999'}`);
  return Number.isNaN(when.getTime()) ? undefined : when.toISOString();
}

/**
 * The server query for the page the filters ask for.
 * @param {{person: string, from: string, to: string, page: number}} gallery  dates as YYYY-MM-DD, local time
 * @returns {import('../api.js').CallQuery}
 */
export function callQuery({ person, from, to, page }) {
  return {
    limit: PAGE_SIZE,
    offset: Math.max(0, page) * PAGE_SIZE,
    caller: person || undefined,
    from: dayEdge(from, 'start'),
    to: dayEdge(to, 'end'),
  };
}

/**
 * @param {number} n
 * @param {string} word
 */
function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * A file name for saving: the call's caller and time, and the file's own
 * extension.
 * @param {CallSummary} call
 * @param {string} what
 * @param {string} file
 */
function saveName(call, what, file) {
  const dot = file.lastIndexOf('.');
  const ext = dot > 0 ? file.slice(dot) : '';
  const stamp = (call.started_at || call.call_id).replace(/[:.]/g, '-').replace(/Z$/, '');
  return `${call.caller}-${stamp}-${what}${ext}`;
}

/** @type {Record<string, string>} */
const PATH_NAMES = Object.freeze({ host: 'direct', srflx: 'through NAT', prflx: 'through NAT', relay: 'through a TURN relay' });

/**
 * "Connected direct over udp · round trip 12 ms · 0 packets lost · 1450 kb/s",
 * from a summary's quality, or '' when there is none.
 * @param {import('../api.js').CallQuality | null | undefined} quality
 * @returns {string}
 */
export function qualityText(quality) {
  if (!quality || typeof quality !== 'object') return '';
  const parts = [];
  const relayed = quality.local === 'relay' || quality.remote === 'relay' ? 'relay' : quality.remote || quality.local;
  if (relayed) parts.push(`Connected ${PATH_NAMES[relayed] || relayed}${quality.protocol ? ` over ${quality.protocol}` : ''}`);
  if (typeof quality.rtt_ms === 'number') parts.push(`round trip ${Math.round(quality.rtt_ms)} ms`);
  if (typeof quality.packets_lost === 'number') parts.push(plural(quality.packets_lost, 'packet') + ' lost');
  if (typeof quality.bitrate_in_kbps === 'number') parts.push(`${Math.round(quality.bitrate_in_kbps)} kb/s received`);
  return parts.join(' · ');
}

/**
 * @param {object} options
 * @param {AppStore} options.store
 * @param {Record<string, HTMLElement>} options.el  by id: gallery-list, gallery-status, gallery-refresh,
 *   gallery-filters, gallery-person, gallery-from, gallery-to, gallery-pager, gallery-prev, gallery-next,
 *   gallery-page, viewer, viewer-body, viewer-title, viewer-close, confirm-delete, confirm-text,
 *   confirm-error, confirm-cancel, confirm-delete-button
 * @param {Document} [options.doc]
 */
export function createGalleryView({ store, el, doc = document }) {
  const viewer = /** @type {HTMLDialogElement} */ (el.viewer);
  const confirm = /** @type {HTMLDialogElement} */ (el['confirm-delete']);
  const person = /** @type {HTMLSelectElement} */ (el['gallery-person']);
  const from = /** @type {HTMLInputElement} */ (el['gallery-from']);
  const to = /** @type {HTMLInputElement} */ (el['gallery-to']);
  const deleteButton = /** @type {HTMLButtonElement} */ (el['confirm-delete-button']);
  /** @type {Map<string, {signature: string, node: HTMLElement}>} */
  const cards = new Map();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let poller;
  let polling = false;
  /** @type {import('../live.js').LiveView | null} */
  let live = null;
  /** @type {CallSummary | null} */
  let toDelete = null;
  let lastSignature = '';
  let loadSerial = 0;

  /** @param {Partial<Gallery>} patch */
  function patch(patch) {
    store.update({ gallery: { ...store.get().gallery, ...patch } });
  }

  // -- loading ---------------------------------------------------------------------

  /** @param {{quiet?: boolean}} [options]  quiet: a background refresh */
  async function refresh({ quiet = false } = {}) {
    const serial = ++loadSerial;
    if (!quiet) patch({ loading: true });
    try {
      const gallery = store.get().gallery;
      const { calls, total, callers } = await fetchCalls(callQuery(gallery));
      if (serial !== loadSerial) return;
      const last = Math.max(0, Math.ceil(total / PAGE_SIZE) - 1);
      if (calls.length === 0 && gallery.page > last) {
        // The page is gone (calls deleted meanwhile): show the last one there is.
        patch({ page: last });
        void refresh({ quiet });
        return;
      }
      const signature = JSON.stringify([calls, total, callers]);
      if (signature === lastSignature && gallery.calls !== null) {
        if (!quiet) patch({ loading: false, error: null });
        return;
      }
      lastSignature = signature;
      patch({ calls, total, callers, loading: false, error: null });
    } catch (err) {
      if (serial !== loadSerial) return;
      patch({ loading: false, error: describeError(errorCode(err)) });
    }
  }

  function schedulePoll() {
    clearTimeout(poller);
    if (!polling) return;
    const live = (store.get().gallery.calls || []).some((c) => c.status === 'in-progress');
    poller = setTimeout(async () => {
      if (doc.visibilityState === 'visible') await refresh({ quiet: true });
      schedulePoll();
    }, live ? REFRESH_LIVE_MS : REFRESH_IDLE_MS);
  }

  watch(store, (s) => s.tab === 'gallery', (open) => {
    polling = open;
    if (open) {
      void refresh().then(schedulePoll);
    } else {
      clearTimeout(poller);
    }
  });
  // A call that just ended shows up with its final facts.
  watch(store, (s) => s.call?.phase, () => {
    if (store.get().tab === 'gallery') void refresh({ quiet: true });
  });

  el['gallery-refresh'].addEventListener('click', () => void refresh());

  // -- filters and pages -------------------------------------------------------------

  el['gallery-filters'].addEventListener('submit', (event) => event.preventDefault());
  el['gallery-filters'].addEventListener('input', () => {
    patch({ person: person.value, from: from.value, to: to.value, page: 0, notice: null });
    void refresh();
  });
  el['gallery-filters'].addEventListener('reset', () => {
    patch({ person: '', from: '', to: '', page: 0, notice: null });
    void refresh();
  });
  el['gallery-prev'].addEventListener('click', () => {
    patch({ page: Math.max(0, store.get().gallery.page - 1) });
    void refresh();
  });
  el['gallery-next'].addEventListener('click', () => {
    patch({ page: store.get().gallery.page + 1 });
    void refresh();
  });

  watch(store, (s) => s.gallery, (gallery) => render(gallery));

  /** @param {Gallery} gallery */
  function render(gallery) {
    const calls = gallery.calls;
    renderPeople(gallery.callers, gallery.person);
    if (from.value !== gallery.from) from.value = gallery.from;
    if (to.value !== gallery.to) to.value = gallery.to;

    if (calls === null) {
      setText(el['gallery-status'], gallery.error || 'Loading calls…');
      show(el['gallery-status'], true);
      show(el['gallery-pager'], false);
      return;
    }
    const filtered = Boolean(gallery.person || gallery.from || gallery.to);
    const pages = Math.max(1, Math.ceil(gallery.total / PAGE_SIZE));
    const page = Math.min(gallery.page, pages - 1);

    let status = '';
    if (gallery.error) status = gallery.error;
    else if (gallery.total === 0 && !filtered) status = 'No calls with the bot yet. Call the bot and they will show up here.';
    else if (gallery.total === 0) status = 'No calls match these filters.';
    if (gallery.notice) status = status ? `${gallery.notice} ${status}` : gallery.notice;
    setText(el['gallery-status'], status);
    show(el['gallery-status'], status !== '');

    renderCards(calls);
    show(el['gallery-pager'], pages > 1);
    setText(el['gallery-page'], `Page ${page + 1} of ${pages} · ${plural(gallery.total, 'call')}`);
    /** @type {HTMLButtonElement} */ (el['gallery-prev']).disabled = page === 0;
    /** @type {HTMLButtonElement} */ (el['gallery-next']).disabled = page >= pages - 1;
  }

  /**
   * @param {string[]} callers
   * @param {string} chosen
   */
  function renderPeople(callers, chosen) {
    const names = [...new Set(callers)].sort((a, b) => a.localeCompare(b));
    if (chosen && !names.includes(chosen)) names.push(chosen);
    const current = [...person.options].slice(1).map((o) => o.value);
    if (current.join('\n') !== names.join('\n')) {
      while (person.options.length > 1) person.remove(1);
      for (const name of names) person.appendChild(h('option', { value: name, text: name }));
    }
    if (person.value !== chosen) person.value = chosen;
  }

  /** @param {CallSummary[]} calls */
  function renderCards(calls) {
    const keep = new Set(calls.map((c) => c.call_id));
    for (const [id, entry] of cards) {
      if (!keep.has(id)) {
        entry.node.remove();
        cards.delete(id);
      }
    }
    let previous = /** @type {Element | null} */ (null);
    for (const call of calls) {
      const signature = JSON.stringify(call);
      let entry = cards.get(call.call_id);
      if (!entry || entry.signature !== signature) {
        const node = card(call);
        if (entry) entry.node.replaceWith(node);
        entry = { signature, node };
        cards.set(call.call_id, entry);
      }
      // In order, moving only what is out of place (focus stays put).
      const expected = previous ? previous.nextElementSibling : el['gallery-list'].firstElementChild;
      if (expected !== entry.node) el['gallery-list'].insertBefore(entry.node, expected);
      previous = entry.node;
    }
  }

  /** @param {CallSummary} call */
  function card(call) {
    const inProgress = call.status === 'in-progress';
    const when = formatTime(call.started_at) || call.call_id;
    const thumb = call.thumbnail
      ? h('img', { class: 'thumb', src: withToken(call.thumbnail), alt: '', loading: 'lazy' })
      : h('div', { class: 'thumb thumb-empty', text: inProgress ? 'Live now' : 'No picture' });
    const facts = inProgress
      ? ['in progress', call.recording ? 'recording' : null, call.photos.length ? plural(call.photos.length, 'photo') : null]
      : [
        call.duration != null ? formatDuration(call.duration) : null,
        plural(call.photos.length, 'photo'),
        plural(call.frames.length, 'frame'),
        call.recording ? `recording ${formatBytes(call.recording.size)}` : 'no recording',
      ];
    const badge = STATUS_WORDS[call.status] || (call.status && call.status !== 'complete' ? call.status : null);
    const actions = h('div', { class: 'call-card-actions' });
    actions.appendChild(h('button', {
      type: 'button', class: 'button button-small', text: 'Open',
      attrs: { 'aria-label': `Open the call of ${call.caller}, ${when}` },
      dataset: { action: 'open' },
      on: { click: () => openViewer(call) },
    }));
    if (call.recording && !inProgress) {
      actions.appendChild(h('a', {
        class: 'button button-small', href: withToken(call.recording.url), text: 'Download',
        download: saveName(call, 'recording', call.recording.file || call.recording.url),
        attrs: { 'aria-label': `Download the recording of ${call.caller}, ${when}` },
        dataset: { action: 'download-recording' },
      }));
    }
    if (inProgress && call.whep) {
      actions.appendChild(h('button', {
        type: 'button', class: 'button button-small button-primary', text: 'Watch live',
        dataset: { action: 'watch-live' },
        on: { click: () => openViewer(call, { live: true }) },
      }));
    }
    if (!inProgress) {
      actions.appendChild(h('button', {
        type: 'button', class: 'button button-small button-quiet-danger', text: 'Delete',
        attrs: { 'aria-label': `Delete the call of ${call.caller}, ${when}` },
        dataset: { action: 'delete' },
        on: { click: () => askDelete(call) },
      }));
    }
    return h(
      'li',
      { class: 'call-card', dataset: { callId: call.call_id, status: call.status || '' } },
      h('button', {
        type: 'button', class: 'call-card-thumb', tabIndex: -1,
        attrs: { 'aria-hidden': 'true' },
        on: { click: () => openViewer(call) },
      }, thumb),
      h(
        'div',
        { class: 'call-card-text' },
        h('span', { class: 'call-card-title', text: when }),
        h('span', { class: 'call-card-caller', text: `${call.caller} with the bot` }),
        h('span', { class: 'call-card-facts', text: facts.filter(Boolean).join(' · ') }),
        badge ? h('span', { class: `badge ${inProgress ? 'badge-live' : 'badge-warn'}`, text: badge }) : null,
      ),
      actions,
    );
  }

  // -- the viewer ----------------------------------------------------------------------

  viewer.addEventListener('close', () => {
    // Stop playback (and range requests, or the live view) when it closes.
    for (const media of viewer.querySelectorAll('video')) media.pause();
    void live?.close();
    live = null;
    clear(el['viewer-body']);
  });
  el['viewer-close'].addEventListener('click', () => viewer.close());

  /**
   * @param {CallSummary} call
   * @param {{live?: boolean}} [options]
   */
  function openViewer(call, { live: watchIt = false } = {}) {
    void live?.close();
    live = null;
    const body = el['viewer-body'];
    clear(body);
    setText(el['viewer-title'], `${call.caller} · ${formatTime(call.started_at) || call.call_id}`);
    if (watchIt && call.whep) {
      const video = /** @type {HTMLVideoElement} */ (h('video', {
        class: 'recording live', autoplay: true, playsInline: true, muted: true, controls: true,
        attrs: { 'aria-label': `Live video of ${call.caller}` },
      }));
      const note = h('p', { class: 'muted', text: 'Connecting to the live call…', attrs: { role: 'status' } });
      body.append(video, note);
      watchLive(call.whep, video, store.get().rtcConfig)
        .then((view) => {
          if (!viewer.open || !body.contains(video)) {
            void view.close();
            return;
          }
          live = view;
          setText(note, 'Live.');
        })
        .catch((err) => setText(note, describeError(errorCode(err))));
    } else if (call.recording) {
      body.appendChild(h('video', {
        class: 'recording', src: withToken(call.recording.url), controls: true, preload: 'metadata', playsInline: true,
        attrs: { 'aria-label': `Recording of the call of ${call.caller}` },
      }));
      body.appendChild(h('p', { class: 'viewer-actions' }, h('a', {
        class: 'button button-small', href: withToken(call.recording.url), text: `Download the recording (${formatBytes(call.recording.size)})`,
        download: saveName(call, 'recording', call.recording.file || call.recording.url),
        dataset: { action: 'download-recording' },
      })));
    } else {
      body.appendChild(h('p', { class: 'muted', text: call.status === 'in-progress' ? 'The call is going on; its recording appears here when it ends.' : 'This call has no recording.' }));
    }
    const quality = qualityText(call.quality);
    if (quality) body.appendChild(h('p', { class: 'muted viewer-quality', text: quality }));
    body.appendChild(strip(call, 'Photos', call.photos, 'photo'));
    body.appendChild(strip(call, 'Frames', call.frames, 'frame'));
    if (!viewer.open) viewer.showModal();
  }

  /**
   * @param {CallSummary} call
   * @param {string} title
   * @param {import('../api.js').FileEntry[]} images
   * @param {'photo' | 'frame'} kind
   */
  function strip(call, title, images, kind) {
    return h(
      'section',
      { class: `strip strip-${kind}` },
      h('h3', { text: `${title} (${images.length})` }),
      images.length
        ? h(
          'ul',
          { class: 'strip-list' },
          ...images.map((image, i) => h(
            'li',
            {},
            h('a', { href: withToken(image.url), target: '_blank', rel: 'noopener', attrs: { 'aria-label': `Open ${image.name}` } },
              h('img', { src: withToken(image.url), alt: image.name, loading: 'lazy' })),
            kind === 'photo'
              ? h('a', {
                class: 'link-button', href: withToken(image.url), text: 'Save',
                download: saveName(call, `photo-${i + 1}`, image.file || image.name),
                dataset: { action: 'download-photo' },
                attrs: { 'aria-label': `Save ${image.name}` },
              })
              : null,
          )),
        )
        : h('p', { class: 'muted', text: `No ${title.toLowerCase()}.` }),
    );
  }

  // Opening a call from elsewhere (the call summary's link).
  watch(store, (s) => s.galleryCall, (callId) => {
    if (!callId) return;
    store.update({ galleryCall: null });
    const known = store.get().gallery.calls?.find((c) => c.call_id === callId);
    if (known) {
      openViewer(known);
      return;
    }
    fetchCall(callId).then(openViewer, (err) => {
      patch({ notice: describeError(errorCode(err)) });
    });
  });

  // -- deleting ----------------------------------------------------------------------

  /** @param {CallSummary} call */
  function askDelete(call) {
    toDelete = call;
    setText(el['confirm-text'],
      `The call of ${call.caller} on ${formatTime(call.started_at) || call.call_id}, with its recording, `
      + `${plural(call.photos.length, 'photo')} and ${plural(call.frames.length, 'frame')}, will be deleted from the server. `
      + 'This can’t be undone.');
    setText(el['confirm-error'], '');
    deleteButton.disabled = false;
    confirm.showModal();
    el['confirm-cancel'].focus();
  }

  el['confirm-cancel'].addEventListener('click', () => confirm.close());
  confirm.addEventListener('close', () => {
    toDelete = null;
  });
  deleteButton.addEventListener('click', async () => {
    const call = toDelete;
    if (!call) return;
    deleteButton.disabled = true;
    setText(deleteButton, 'Deleting…');
    try {
      await deleteCall(call.call_id);
      confirm.close();
      const { calls: shown, total } = store.get().gallery;
      const calls = (shown || []).filter((c) => c.call_id !== call.call_id);
      lastSignature = '';
      patch({ calls, total: Math.max(0, total - 1), notice: `The call of ${call.caller} was deleted.` });
      void refresh({ quiet: true });
    } catch (err) {
      setText(el['confirm-error'], describeError(errorCode(err)));
      deleteButton.disabled = false;
    } finally {
      setText(deleteButton, 'Delete');
    }
  });

  return { refresh };
}
