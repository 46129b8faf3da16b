import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {DEFAULTS, parseConfigText, readConfigFile, resolveConfig} from '../../../src/lib/config/schema.js'

const SAMPLE = new URL('../../../docs/anygate.conf.sample', import.meta.url).pathname

describe('docs/anygate.conf.sample', () => {
  it('is valid as shipped (all commented out)', () => {
    assert.deepEqual(readConfigFile(SAMPLE), {})
  })

  it('is valid with every setting uncommented', async () => {
    const fs = await import('node:fs')
    const text = fs.readFileSync(SAMPLE, 'utf8').replace(/^#(\w[\w-]* = )/gm, '$1')
    const c = resolveConfig(parseConfigText(text, SAMPLE), {})
    assert.equal(c.groups.length, 2)
    assert.equal(c.routes.length, 1)
    assert.equal(c.ipv6Pool?.text, '2001:db8:1::/64')
    // The values the sample shows are the defaults it claims
    assert.deepEqual([c.maxBanScore, c.banResetTime, c.banPointsWrongPassword], [DEFAULTS.maxBanScore, DEFAULTS.banResetTime, DEFAULTS.banPointsWrongPassword])
    assert.deepEqual([c.cookieTimeout, c.maxClients], [DEFAULTS.cookieTimeout, DEFAULTS.maxClients])
  })
})
