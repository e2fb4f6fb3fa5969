/**
 * Photos in a call: the sending status, a tile per photo (opens large, can
 * be saved), a notice over the video when the other side sends one (so it
 * is not missed below the fold), and the large view with a Save link.
 */

import { clear, h, setText, show } from '../dom.js';
import { watch } from '../store.js';

/**
 * @typedef {import('../state.js').AppState} AppState
 * @typedef {import('../state.js').PhotoTile} PhotoTile
 * @typedef {import('../store.js').Store<AppState>} AppStore
 */

/** The photo notice goes away by itself after this long. */
const TOAST_MS = 15000;

/**
 * @param {object} options
 * @param {AppStore} options.store
 * @param {Record<string, HTMLElement>} options.el  by id: photo-status, photo-progress, photo-message,
 *   call-photos, call-photos-section, photo-toast, photo-toast-image, photo-toast-text, photo-toast-view,
 *   photo-toast-close, lightbox, lightbox-image, lightbox-caption, lightbox-save, lightbox-close
 * @param {{seenPhoto: () => void}} options.actions
 */
export function createPhotosView({ store, el, actions }) {
  const progress = /** @type {HTMLProgressElement} */ (el['photo-progress']);
  const lightbox = /** @type {HTMLDialogElement} */ (el.lightbox);
  const lightboxImage = /** @type {HTMLImageElement} */ (el['lightbox-image']);
  const save = /** @type {HTMLAnchorElement} */ (el['lightbox-save']);
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let toastTimer;

  el['lightbox-close'].addEventListener('click', () => lightbox.close());
  el['photo-toast-close'].addEventListener('click', () => actions.seenPhoto());
  el['photo-toast-view'].addEventListener('click', () => {
    const photo = store.get().newPhoto;
    actions.seenPhoto();
    if (photo) open(photo);
  });
  // A click on the backdrop (outside the dialog's box) closes it.
  lightbox.addEventListener('click', (event) => {
    if (event.target === lightbox) lightbox.close();
  });

  /** @param {PhotoTile} photo */
  function open(photo) {
    lightboxImage.src = photo.url;
    lightboxImage.alt = photo.caption;
    setText(el['lightbox-caption'], photo.caption);
    save.href = photo.url;
    save.download = photo.name;
    if (!lightbox.open) lightbox.showModal();
  }

  watch(store, (s) => s.photoStatus, (status) => {
    show(el['photo-status'], status !== null);
    if (!status) return;
    el['photo-status'].dataset.state = status.state;
    progress.value = status.fraction;
    setText(el['photo-message'], status.text);
  });

  watch(store, (s) => s.photos, (photos) => {
    show(el['call-photos-section'], photos.length > 0);
    clear(el['call-photos']);
    for (const photo of photos) {
      el['call-photos'].appendChild(h(
        'li',
        {
          class: `photo-tile photo-${photo.direction}`,
          dataset: { sha256: photo.sha256, direction: photo.direction, state: photo.state },
        },
        h('button', {
          type: 'button',
          class: 'photo-open',
          attrs: { 'aria-label': `Open the photo large: ${photo.caption}` },
          on: { click: () => open(photo) },
        }, h('img', { src: photo.url, alt: photo.caption })),
        h('span', { class: 'photo-caption', text: photo.caption }),
        h('a', { class: 'link-button photo-save', href: photo.url, download: photo.name, text: 'Save' }),
      ));
    }
  });

  watch(store, (s) => s.newPhoto, (photo) => {
    clearTimeout(toastTimer);
    show(el['photo-toast'], photo !== null);
    if (!photo) return;
    /** @type {HTMLImageElement} */ (el['photo-toast-image']).src = photo.url;
    setText(el['photo-toast-text'], `${photo.from} sent you a photo`);
    toastTimer = setTimeout(() => {
      if (store.get().newPhoto === photo) actions.seenPhoto();
    }, TOAST_MS);
  });
}
