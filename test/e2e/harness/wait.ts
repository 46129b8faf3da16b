/** Small helpers every end-to-end test file uses. */
import assert from 'node:assert/strict'
import {setTimeout as sleep} from 'node:timers/promises'

import {findMissingTools} from './netns.js'

/**
 * The `skip` option of a suite that needs root and the named tools, or false. Only a non-root
 * run skips: as root (CI) a missing tool is an error, so an install that went wrong cannot
 * pass as a green run with the end-to-end tests quietly left out.
 */
export function skipUnlessReady(tools: string[]): string | false {
  if (process.getuid?.() !== 0) return 'needs root for network namespaces'
  const missing = findMissingTools(tools)
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: run scripts/setup.sh first`)
  return false
}

/** Polls `check` every 100 ms; fails the test with `what` after `ms`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, ms = 15_000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return
    await sleep(100)
  }

  assert.fail(`timed out waiting for ${what}`)
}
