/**
 * The gallery of past calls with the bot: a list of cards, and a viewer with
 * the recording (served with range requests, so it seeks), photos and frames.
 */

import { withToken } from './token.js';
import { fetchCalls } from './api.js';
import { describeError, errorCode } from './errors.js';
import { clear, formatDuration, h } from './dom.js';

/**
 * @typedef {import('./api.js').CallSummary} CallSummary
 *
 * @typedef {object} Gallery
 * @property {() => Promise<void>} refresh
 */

/**
 * @param {object} elements
 * @param {HTMLElement} elements.list  where the cards go
 * @param {HTMLElement} elements.status  a line for "loading" / errors / empty
 * @param {HTMLDialogElement} elements.viewer  the dialog that plays a call
 * @param {HTMLElement} elements.viewerBody
 * @param {HTMLElement} elements.viewerTitle
 * @returns {Gallery}
 */
export function createGallery({ list, status, viewer, viewerBody, viewerTitle }) {
  viewer.addEventListener('close', () => {
    // Stop playback (and range requests) when the viewer is closed.
    for (const media of viewerBody.querySelectorAll('video')) media.pause();
    clear(viewerBody);
  });

  async function refresh() {
    status.textContent = 'Loading past calls…';
    status.hidden = false;
    let calls;
    try {
      calls = await fetchCalls();
    } catch (err) {
      status.textContent =
        errorCode(err) === 'gallery-unavailable'
          ? 'The server doesn’t offer a gallery of calls.'
          : describeError(errorCode(err));
      return;
    }
    clear(list);
    if (calls.length === 0) {
      status.textContent = 'No calls with the bot yet. Call the bot and they will show up here.';
      return;
    }
    status.hidden = true;
    for (const call of calls) list.appendChild(card(call));
  }

  /** @param {CallSummary} call */
  function card(call) {
    const started = call.started_at ? new Date(call.started_at) : null;
    const thumb = call.thumbnail
      ? h('img', { class: 'thumb', src: withToken(call.thumbnail), alt: '', loading: 'lazy' })
      : h('div', { class: 'thumb thumb-empty', text: 'No picture' });
    const facts = [
      call.duration != null ? formatDuration(call.duration) : null,
      plural(call.photos.length, 'photo'),
      plural(call.frames.length, 'frame'),
      call.recording ? 'recording' : 'no recording',
    ].filter(Boolean);
    return h(
      'li',
      { class: 'call-card', dataset: { callId: call.call_id } },
      h(
        'button',
        {
          type: 'button',
          class: 'call-card-button',
          attrs: { 'aria-label': `Open the call of ${call.caller}` },
          on: { click: () => open(call) },
        },
        thumb,
        h(
          'div',
          { class: 'call-card-text' },
          h('span', { class: 'call-card-title', text: started ? started.toLocaleString() : call.call_id }),
          h('span', { class: 'call-card-caller', text: `${call.caller} with the bot` }),
          h('span', { class: 'call-card-facts', text: facts.join(' · ') }),
          call.status !== 'complete' ? h('span', { class: 'badge badge-warn', text: call.status }) : null,
        ),
      ),
    );
  }

  /** @param {CallSummary} call */
  function open(call) {
    clear(viewerBody);
    const started = call.started_at ? new Date(call.started_at).toLocaleString() : call.call_id;
    viewerTitle.textContent = `${call.caller} · ${started}`;
    if (call.recording) {
      viewerBody.appendChild(
        h('video', {
          class: 'recording',
          src: withToken(call.recording.url),
          controls: true,
          preload: 'metadata',
          playsInline: true,
        }),
      );
    } else {
      viewerBody.appendChild(h('p', { class: 'muted', text: 'This call has no recording.' }));
    }
    viewerBody.appendChild(strip('Photos', call.photos, 'photo'));
    viewerBody.appendChild(strip('Frames', call.frames, 'frame'));
    viewer.showModal();
  }

  /**
   * @param {string} title
   * @param {{url: string, name: string}[]} images
   * @param {string} kind
   */
  function strip(title, images, kind) {
    return h(
      'section',
      { class: `strip strip-${kind}` },
      h('h3', { text: `${title} (${images.length})` }),
      images.length
        ? h(
          'ul',
          { class: 'strip-list' },
          ...images.map((image) =>
            h('li', {}, h('a', { href: withToken(image.url), target: '_blank', rel: 'noopener' },
              h('img', { src: withToken(image.url), alt: image.name, loading: 'lazy' }))),
          ),
        )
        : h('p', { class: 'muted', text: `No ${title.toLowerCase()}.` }),
    );
  }

  return { refresh };
}

/**
 * @param {number} n
 * @param {string} word
 */
function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
