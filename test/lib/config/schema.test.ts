import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {ConfigError} from '../../../src/lib/errors.js'
import {parseConfigText, resolveConfig} from '../../../src/lib/config/schema.js'

const fails = (fn: () => unknown, code: string, msg?: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof ConfigError && e.code === code && (!msg || msg.test(e.message)))

describe('config', () => {
  it('runs on embedded defaults alone', () => {
    const c = resolveConfig({}, {})
    assert.deepEqual(c.listen, {host: '0.0.0.0', port: 443})
    assert.equal(c.ipv4Pool.text, '198.19.0.0/24')
    assert.deepEqual(c.routes, [])
  })

  it('reads key = value lines, comments and repeated keys', () => {
    const raw = parseConfigText('# sample\nlisten = 198.18.0.1:4443\ndns = 198.19.0.1\ndns=198.19.0.2\nroute = 198.18.5.0/24\ndtls = false\ndpd = 30\n')
    const c = resolveConfig(raw, {})
    assert.equal(c.listen.port, 4443)
    assert.deepEqual(c.dns, ['198.19.0.1', '198.19.0.2'])
    assert.equal(c.routes[0].text, '198.18.5.0/24')
    assert.equal(c.dpd, 30)
  })

  it('lets flags win over the file', () => {
    const c = resolveConfig(parseConfigText('dns = 198.19.0.1\nmtu = 1400'), {dns: ['198.19.0.9'], mtu: undefined})
    assert.deepEqual(c.dns, ['198.19.0.9'])
    assert.equal(c.mtu, 1400)
  })

  it('names the file and line of a bad key or value', () => {
    fails(() => parseConfigText('listen = x\nbogus = 1', 'a.conf'), 'CONFIG_UNKNOWN_KEY', /a.conf:2/)
    fails(() => parseConfigText('dpd = soon', 'a.conf'), 'CONFIG_BAD_VALUE', /a.conf:1/)
    fails(() => parseConfigText('just words'), 'CONFIG_SYNTAX')
  })

  it('refuses bad networks and listen addresses', () => {
    fails(() => resolveConfig({'ipv4-pool': '198.19.0.0/33'}, {}), 'CONFIG_BAD_CIDR')
    fails(() => resolveConfig({'ipv4-pool': '198.19.0.0/31'}, {}), 'CONFIG_BAD_CIDR')
    fails(() => resolveConfig({'ipv4-pool': 'fd00::/64'}, {}), 'CONFIG_BAD_CIDR')
    fails(() => resolveConfig({route: ['10.0.0.0/8x']}, {}), 'CONFIG_BAD_CIDR')
    fails(() => resolveConfig({listen: '1.2.3.4'}, {}), 'CONFIG_BAD_LISTEN')
    fails(() => resolveConfig({dns: ['not-an-ip']}, {}), 'CONFIG_BAD_VALUE')
  })
})
