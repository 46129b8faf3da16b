import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parseTranscript} from '../../../src/lib/replay/reader.js'
import type {ConfigError} from '../../../src/lib/errors.js'

const withFrames = (frames: unknown[]) =>
  JSON.stringify({
    format: 'anygate-transcript',
    version: 1,
    steps: [
      {
        kind: 'connect',
        request: {method: 'CONNECT', path: '/CSCOSSLC/tunnel', headers: [], body: ''},
        response: {status: 200, statusText: 'CONNECTED', headers: [], body: ''},
        frames,
      },
    ],
  })

describe('parseTranscript frames', () => {
  it('keeps a frame time when given and leaves it out when not', () => {
    const t = parseTranscript(withFrames([{from: 'client', type: 'Data', length: 84, at: 1250}, {from: 'gateway', type: 'Data', length: 84}]))
    const step = t.steps[0]
    assert.ok(step.kind === 'connect')
    assert.deepEqual(step.frames, [{from: 'client', type: 'Data', length: 84, at: 1250}, {from: 'gateway', type: 'Data', length: 84}])
  })

  for (const at of [-1, 1.5, '12', 86_400_001]) {
    it(`refuses a frame time of ${JSON.stringify(at)}`, () => {
      assert.throws(
        () => parseTranscript(withFrames([{from: 'client', type: 'Data', length: 84, at}])),
        (err: ConfigError) => err.code === 'REPLAY_BAD_TRANSCRIPT' && /steps\[0\]\.frames\[0\]\.at/.test(err.message),
      )
    })
  }
})
