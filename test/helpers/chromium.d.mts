import type { Browser } from 'playwright-core';

/** Where Debian's Chromium is. */
export declare const CHROMIUM: string;

/** Launches headless Debian Chromium and connects playwright-core to it. */
export declare function openChromium(): Promise<{ browser: Browser; close(): Promise<void> }>;
