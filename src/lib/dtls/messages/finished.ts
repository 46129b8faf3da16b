/** Finished (RFC 5246 §7.4.9): the 12-byte verify_data, compared in constant time. */
import crypto from 'node:crypto'

import {VERIFY_DATA_LEN} from '../constants.js'

export function isFinishedValid(body: Buffer, expected: Buffer): boolean {
  return body.length === VERIFY_DATA_LEN && crypto.timingSafeEqual(body, expected)
}
