/**
 * Token auth (server flag --auth-secret): the page is opened as
 * `/?token=<JWT>` and passes the same token on every request it makes to the
 * server, in the `token` query parameter, which the server accepts for the
 * WebSocket upgrade, the API, and media elements that cannot set headers.
 */

/**
 * `url` (same origin) with the page's token added, or unchanged without one.
 * @param {string} url
 * @param {Location} [location]
 * @returns {string}
 */
export function withToken(url, location = window.location) {
  const token = new URLSearchParams(location.search).get('token');
  if (!token) return url;
  const target = new URL(url, location.href);
  // A URL the server signed for this one file (`sig`) or that carries its
  // own token needs no login token, which would only spread it further.
  if (target.searchParams.has('sig') || target.searchParams.has('token')) return url;
  target.searchParams.set('token', token);
  return target.origin === location.origin && !/^wss?:/.test(url)
    ? target.pathname + target.search
    : target.toString();
}
