import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parseCidr} from '../../../src/lib/config/ip.js'
import {AddressPool} from '../../../src/lib/session/pool.js'

describe('AddressPool', () => {
  it('keeps the first address for the gateway and leases the rest', () => {
    const p = new AddressPool(parseCidr('198.19.0.0/29'))
    assert.equal(p.gateway, '198.19.0.1')
    const got = Array.from({length: 5}, () => p.lease())
    assert.deepEqual(got, ['198.19.0.2', '198.19.0.3', '198.19.0.4', '198.19.0.5', '198.19.0.6'])
    assert.equal(p.lease(), undefined)
    p.release('198.19.0.4')
    assert.equal(p.lease(), '198.19.0.4')
  })

  it('leases IPv6 addresses', () => {
    const p = new AddressPool(parseCidr('2001:2:0:1::/64'))
    assert.equal(p.gateway, '2001:2:0:1::1')
    assert.equal(p.lease(), '2001:2:0:1::2')
  })
})
