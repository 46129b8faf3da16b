import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {
  configureTun,
  deleteLink,
  linkExists,
  tunConfigCommands,
  type TunAddressConfig,
} from '../../../src/lib/tun/ip.js'

// Pure string tests: nothing here is configured anywhere. IPv6 values are RFC 3849
// documentation addresses.
const V4: TunAddressConfig = {localV4: '198.18.0.1', peerV4: '198.18.0.2', mtu: 1400}

describe('tunConfigCommands', () => {
  it('sets the mtu, adds the point-to-point address, then brings the link up', () => {
    assert.deepEqual(tunConfigCommands('anygate0', V4), [
      'link set dev anygate0 mtu 1400',
      'address add 198.18.0.1 peer 198.18.0.2/32 dev anygate0',
      'link set dev anygate0 up',
    ])
  })

  it('adds an IPv6 peer address with its prefix before bringing the link up', () => {
    const cfg = {...V4, localV6: '2001:db8::1', peerV6: '2001:db8::2', prefixV6: 64}

    assert.deepEqual(tunConfigCommands('anygate0', cfg), [
      'link set dev anygate0 mtu 1400',
      'address add 198.18.0.1 peer 198.18.0.2/32 dev anygate0',
      'address add 2001:db8::1 peer 2001:db8::2/64 dev anygate0',
      'link set dev anygate0 up',
    ])
  })

  it('adds a lone IPv6 address as a /128 by default', () => {
    const lines = tunConfigCommands('anygate0', {...V4, localV6: '2001:db8::1'})

    assert.equal(lines[2], 'address add 2001:db8::1/128 dev anygate0')
  })

  it('rejects names that could smuggle a command into the batch', () => {
    for (const name of ['a b', 'a\nlink del lo', 'x#y', 'a"b', '', 'sixteen-chars-xx', '..']) {
      assert.throws(() => tunConfigCommands(name, V4), RangeError, JSON.stringify(name))
    }
  })

  it('rejects malformed addresses', () => {
    const bad: Partial<TunAddressConfig>[] = [
      {localV4: '198.18.0.1 dev lo'},
      {peerV4: '198.18.0.256'},
      {localV4: '2001:db8::1'},
      {localV6: '198.18.0.1'},
      {localV6: 'fe80::1%lo'},
      {localV6: '2001:db8::1', peerV6: '2001:db8::2\nlink del lo'},
    ]
    for (const fields of bad) {
      assert.throws(() => tunConfigCommands('anygate0', {...V4, ...fields}), RangeError)
    }
  })

  it('rejects an IPv6 peer without a local address', () => {
    assert.throws(() => tunConfigCommands('anygate0', {...V4, peerV6: '2001:db8::2'}), /localV6/)
  })

  it('rejects an mtu out of range, and below 1280 when IPv6 is asked for', () => {
    assert.throws(() => tunConfigCommands('anygate0', {...V4, mtu: 67}), RangeError)
    assert.throws(() => tunConfigCommands('anygate0', {...V4, mtu: 1400.5}), RangeError)

    const v6 = {...V4, mtu: 1279, localV6: '2001:db8::1'}
    assert.throws(() => tunConfigCommands('anygate0', v6), /1280/)
  })

  it('rejects a prefix out of range', () => {
    const cfg = {...V4, localV6: '2001:db8::1', prefixV6: 129}

    assert.throws(() => tunConfigCommands('anygate0', cfg), /prefixV6/)
  })
})

describe('ip helpers input checks', () => {
  it('refuse a bad name before running ip', async () => {
    await assert.rejects(configureTun('bad name', V4), RangeError)
    await assert.rejects(linkExists('bad name'), RangeError)
    await assert.rejects(deleteLink('bad/name'), RangeError)
  })

  it('refuse a bad namespace name before running ip', async () => {
    await assert.rejects(linkExists('anygate0', {netns: 'a b'}), RangeError)
  })
})
