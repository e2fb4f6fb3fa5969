/**
 * One small state store for the page. The state is a frozen plain object;
 * `update` replaces parts of it and tells every subscriber. Views never keep
 * their own copy of shared state: they read it here and render.
 */

/**
 * @template S
 * @typedef {object} Store
 * @property {() => S} get
 * @property {(patch: Partial<S> | ((state: S) => Partial<S>)) => void} update
 * @property {(listener: (state: S, previous: S) => void) => () => void} subscribe
 */

/**
 * @template S
 * @param {S} initial
 * @returns {Store<S>}
 */
export function createStore(initial) {
  let state = Object.freeze({ ...initial });
  /** @type {Set<(state: S, previous: S) => void>} */
  const listeners = new Set();
  let notifying = false;
  let dirty = false;

  /** @param {Partial<S> | ((state: S) => Partial<S>)} patch */
  function update(patch) {
    const changes = typeof patch === 'function' ? patch(state) : patch;
    const previous = state;
    state = Object.freeze({ ...state, ...changes });
    // An update made by a listener is announced in a next round, after every
    // listener saw this one, so all of them see the updates in order.
    if (notifying) {
      dirty = true;
      return;
    }
    notifying = true;
    let announced = previous;
    try {
      do {
        dirty = false;
        const now = state;
        for (const listener of [...listeners]) listener(now, announced);
        announced = now;
      } while (dirty);
    } finally {
      notifying = false;
    }
  }

  return {
    get: () => state,
    update,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/**
 * Calls `render(selected)` now and whenever `select(state)` changes
 * (compared with `Object.is`, or element by element for arrays).
 *
 * @template S, T
 * @param {Store<S>} store
 * @param {(state: S) => T} select
 * @param {(value: T, previous: T | undefined) => void} render
 * @returns {() => void}  stops watching
 */
export function watch(store, select, render) {
  let current = select(store.get());
  render(current, undefined);
  return store.subscribe((state) => {
    const next = select(state);
    if (same(next, current)) return;
    const previous = current;
    current = next;
    render(next, previous);
  });
}

/**
 * @param {unknown} a
 * @param {unknown} b
 * @returns {boolean}
 */
function same(a, b) {
  if (Object.is(a, b)) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => Object.is(item, b[i]));
  }
  return false;
}
