import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {resolveConfig} from '../../../src/lib/config/schema.js'
import {planReload} from '../../../src/lib/gateway/reload.js'

const base = {listen: '198.18.0.1:443', 'ipv4-pool': '198.19.0.0/24', dns: ['198.19.0.1'], banner: 'one'}

describe('planReload', () => {
  it('changes nothing for the same settings', () => {
    const c = resolveConfig({}, base)
    const plan = planReload(c, resolveConfig({}, base))
    assert.deepEqual([plan.changed, plan.needsRestart], [[], []])
  })

  it('takes live settings and names them by their config key', () => {
    const c = resolveConfig({}, base)
    const next = resolveConfig({}, {...base, dns: ['198.19.0.53'], route: ['198.18.5.0/24'], banner: 'two', 'log-level': 'debug'})
    const plan = planReload(c, next)
    assert.deepEqual(plan.changed.sort(), ['banner', 'dns', 'log-level', 'route'])
    assert.deepEqual(plan.needsRestart, [])
    assert.deepEqual(plan.config.dns, ['198.19.0.53'])
    assert.equal(plan.config.banner, 'two')
    assert.equal(plan.config.routes[0].text, '198.18.5.0/24')
  })

  it('keeps the running value of what needs a restart, and names it', () => {
    const c = resolveConfig({}, base)
    const next = resolveConfig({}, {...base, listen: '198.18.0.1:8443', 'ipv4-pool': '198.19.1.0/24', 'cookie-timeout': 60, dpd: 30})
    const plan = planReload(c, next)
    assert.deepEqual(plan.needsRestart.sort(), ['cookie-timeout', 'ipv4-pool', 'listen'])
    assert.deepEqual(plan.changed, ['dpd'])
    assert.equal(plan.config.listen.port, 443)
    assert.equal(plan.config.ipv4Pool.text, '198.19.0.0/24')
    assert.equal(plan.config.cookieTimeout, c.cookieTimeout)
    assert.equal(plan.config.dpd, 30)
  })
})
