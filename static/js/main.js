/**
 * The entry point: index.html loads this module, which starts the page.
 * Everything else is in factories (js/app.js puts them together).
 */

import { createApp } from './app.js';

createApp(document);
