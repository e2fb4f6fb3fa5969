/**
 * Tiny DOM helpers. Text always goes in with textContent (never innerHTML),
 * so names and messages that came over the network cannot become markup.
 */

/**
 * @typedef {Node | string | number | null | undefined | false} Child
 */

/**
 * Builds an element.
 *
 * `props` keys: `class`, `text` (textContent), `dataset` (object), `on`
 * (object of event listeners), `attrs` (object of attributes, e.g. aria-*),
 * anything else is set as a property (`src`, `type`, `hidden`, ...).
 *
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {...Child} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'on') {
      for (const [type, fn] of Object.entries(value)) node.addEventListener(type, fn);
    } else if (key === 'attrs') {
      for (const [name, v] of Object.entries(value)) node.setAttribute(name, String(v));
    } else /** @type {any} */ (node)[key] = value;
  }
  append(node, ...children);
  return node;
}

/**
 * Appends children, turning strings into text nodes.
 * @param {Node} parent
 * @param {...Child} children
 */
export function append(parent, ...children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * Removes every child of `node`.
 * @param {Node} node
 */
export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

/**
 * The element with this id, or an error naming it (a missing element is a bug
 * in index.html, better found at start-up than at first click).
 * @param {Document | ParentNode} root
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(root, id) {
  const node = /** @type {Document} */ (root).getElementById
    ? /** @type {Document} */ (root).getElementById(id)
    : root.querySelector(`#${id}`);
  if (!node) throw new Error(`index.html has no #${id}`);
  return /** @type {HTMLElement} */ (node);
}

/**
 * "1:05", "12:00", "1:02:03" for a duration in seconds.
 * @param {number} seconds
 * @returns {string}
 */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const secs = String(s % 60).padStart(2, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${secs}` : `${minutes}:${secs}`;
}

/**
 * "1.2 MB" for a byte count.
 * @param {number} bytes
 * @returns {string}
 */
export function formatBytes(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(0)} kB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/**
 * Sets `node.textContent` only when it changes, so live regions announce
 * changes and nothing else.
 * @param {Node} node
 * @param {string} text
 */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/**
 * Shows or hides `node` (the `hidden` attribute).
 * @param {HTMLElement} node
 * @param {boolean} visible
 */
export function show(node, visible) {
  if (node.hidden === visible) node.hidden = !visible;
}

/**
 * "12 Mar 2026, 14:05" for an ISO time, in the person's locale.
 * @param {string | null | undefined} iso
 * @returns {string}
 */
export function formatTime(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
