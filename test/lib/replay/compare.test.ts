import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {DEFAULT_RULES, compareBodies, compareConnect, compareCookies, compareFrames, compareHeaders, flattenXml, shapeOf, valuesMatch} from '../../../src/lib/replay/compare.js'
import type {RecordedFrame} from '../../../src/lib/replay/format.js'

describe('shapeOf', () => {
  it('names the kind of a value', () => {
    assert.equal(shapeOf('198.19.0.7'), 'ipv4')
    assert.equal(shapeOf('198.18.5.0/255.255.255.0'), 'ipv4-network')
    assert.equal(shapeOf('fd00::5'), 'ipv6')
    assert.equal(shapeOf('86419'), 'integer')
    assert.equal(shapeOf('Thu, 03 Dec 2026 19:43:05 GMT'), 'http-date')
    assert.equal(shapeOf('m3VYK9sG+TLEow8crP3iH3FhyUZ4M5GDUhdncFlbVxc='), 'base64')
    assert.equal(shapeOf(''), 'empty')
    assert.equal(shapeOf('ocserv 1.1.6'), 'text')
  })
})

describe('valuesMatch', () => {
  it('lets a placeholder stand for any value of that form', () => {
    assert.ok(valuesMatch('webvpn={{cookie:webvpn}}; Secure', 'webvpn=AbC123; Secure', 'value'))
    assert.ok(!valuesMatch('webvpn={{cookie:webvpn}}; Secure', 'webvpn=AbC123; HttpOnly', 'value'))
    assert.ok(!valuesMatch('webvpn={{cookie:webvpn}}', 'webvpn=', 'value'))
  })

  it('compares by shape or value as told', () => {
    assert.ok(valuesMatch('198.19.0.7', '198.19.0.9', 'shape'))
    assert.ok(!valuesMatch('198.19.0.7', 'fd00::9', 'shape'))
    assert.ok(!valuesMatch('1472', '1430', 'value'))
    assert.ok(valuesMatch('a', 'b', 'ignore'))
  })
})

describe('compareHeaders', () => {
  it('reports a changed value, a missing and an extra header, and keeps pool addresses by shape', () => {
    const rec: [string, string][] = [['X-CSTP-MTU', '1472'], ['X-CSTP-Address', '198.19.0.7'], ['X-CSTP-Keep', 'true']]
    const live: [string, string][] = [['x-cstp-mtu', '1430'], ['X-CSTP-Address', '198.19.0.9'], ['X-CSTP-Protocol', 'x']]
    const d = compareHeaders(rec, live, DEFAULT_RULES)
    assert.deepEqual(d.map((x) => [x.name, x.expected, x.actual]), [
      ['X-CSTP-MTU', '1472', '1430'],
      ['X-CSTP-Keep', 'true', undefined],
      ['X-CSTP-Protocol', undefined, 'x'],
    ])
  })

  it('treats repeated headers as a set and Connection by meaning', () => {
    const rec: [string, string][] = [['X-CSTP-Split-Include', 'a'], ['X-CSTP-Split-Include', 'b']]
    const live: [string, string][] = [['X-CSTP-Split-Include', 'b'], ['X-CSTP-Split-Include', 'a'], ['Connection', 'keep-alive']]
    assert.deepEqual(compareHeaders(rec, live, DEFAULT_RULES), [])
    const closing: [string, string][] = [...live.slice(0, 2), ['Connection', 'close']]
    assert.equal(compareHeaders(rec, closing, DEFAULT_RULES)[0].name, 'Connection')
  })

  it('lets a transcript rule come before the defaults', () => {
    const d = compareHeaders([['X-CSTP-MTU', '1472']], [['X-CSTP-MTU', '1430']], [{header: 'x-cstp-mtu', compare: 'shape'}, ...DEFAULT_RULES])
    assert.deepEqual(d, [])
  })
})

describe('compareCookies', () => {
  it('compares set or cleared and the attributes, never the value', () => {
    assert.deepEqual(compareCookies(['webvpn={{cookie:webvpn}}; Secure; HttpOnly'], ['webvpn=zzz; HttpOnly; Secure']), [])
    const d = compareCookies(['webvpncontext=; expires=Thu, 01 Jan 1970 22:00:00 GMT; path=/; Secure'], ['webvpncontext=abc; Max-Age=300; Secure'])
    assert.equal(d.length, 1)
    assert.equal(d[0].expected, 'cleared; expires=http-date; path=/; secure')
    assert.equal(d[0].actual, 'set; max-age=integer; secure')
  })
})

describe('XML comparison', () => {
  const form = (inputs: string, version = '0.1(1)') =>
    `<?xml version="1.0"?><config-auth client="vpn" type="auth-request"><version who="sg">${version}</version><auth id="main"><form action="/auth">${inputs}</form></auth></config-auth>`

  it('flattens to paths keyed by name', () => {
    const m = flattenXml(form('<input type="text" name="username" label="User:"/>'))!
    assert.equal(m.get('/config-auth/@type'), 'auth-request')
    assert.equal(m.get('/config-auth/auth/form/input[@name=username]/@label'), 'User:')
  })

  it('finds a new field once, ignores field order and compares the version by shape', () => {
    const a = form('<input type="text" name="username"/>')
    const b = form('<input type="password" name="password"/><input type="text" name="username"/>', '1.2.3')
    const d = compareBodies(a, b, DEFAULT_RULES)
    assert.deepEqual(d.map((x) => x.name), ['/config-auth/auth/form/input[@name=password]'])
  })

  it('refuses to parse entities and says when one side is not XML', () => {
    assert.equal(flattenXml('<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'), undefined)
    assert.equal(compareBodies('<x/>', 'plain', DEFAULT_RULES)[0].where, 'body')
  })
})

describe('compareConnect', () => {
  it('reports what a CONNECT answer means', () => {
    const rec: [string, string][] = [['X-CSTP-Address', '198.19.0.7'], ['X-CSTP-MTU', '1472'], ['X-CSTP-Split-Include', '198.18.5.0/255.255.255.0']]
    const live: [string, string][] = [['X-CSTP-Address', '198.19.0.9'], ['X-CSTP-Address-IP6', 'fd00::9'], ['X-CSTP-MTU', '1472'], ['X-DTLS-Port', '443'], ['X-DTLS12-CipherSuite', 'PSK-NEGOTIATE']]
    const d = Object.fromEntries(compareConnect(rec, live).map((x) => [x.name, [x.expected, x.actual]]))
    assert.deepEqual(d['address family'], ['IPv4', 'IPv4+IPv6'])
    assert.deepEqual(d.routes, ['198.18.5.0/255.255.255.0', 'all traffic'])
    assert.deepEqual(d['dtls offer'], ['none', 'cipher PSK-NEGOTIATE'])
    assert.equal(d.mtu, undefined)
  })
})

describe('compareFrames', () => {
  const f = (from: RecordedFrame['from'], type: string, at?: number): RecordedFrame => ({from, type, length: 0, at})

  it("compares the set of the gateway's control frames, not DATA nor the client's", () => {
    const rec = [f('client', 'Data'), f('gateway', 'Data'), f('client', 'DpdRequest'), f('gateway', 'DpdResponse')]
    assert.deepEqual(compareFrames(rec, [f('gateway', 'DpdResponse'), f('gateway', 'DpdResponse')]), [])
    assert.deepEqual(compareFrames(rec, [f('gateway', 'Data')]).map((d) => [d.where, d.expected, d.actual]), [['frames', 'DpdResponse', '(none)']])
    assert.deepEqual(compareFrames([], [f('gateway', 'Disconnect', 20)]).map((d) => d.actual), ['Disconnect'])
  })

  it('counts a recorded frame only within the replay window, unless it answers a DPD request', () => {
    const rec = [f('gateway', 'Keepalive', 999), f('gateway', 'DpdRequest', 1000), f('gateway', 'Disconnect', 9000), f('client', 'DpdRequest', 5000), f('gateway', 'DpdResponse', 5001)]
    assert.deepEqual(compareFrames(rec, [f('gateway', 'Keepalive', 10), f('gateway', 'DpdResponse', 11)]), [])
    assert.deepEqual(compareFrames(rec, [f('gateway', 'DpdResponse', 11)]).map((d) => d.expected), ['DpdResponse, Keepalive'])
    assert.deepEqual(compareFrames(rec, [f('gateway', 'Keepalive', 10), f('gateway', 'DpdResponse', 11), f('gateway', 'Disconnect', 9000)], 10_000).map((d) => d.expected), [
      'Disconnect, DpdRequest, DpdResponse, Keepalive',
    ])
    // Frames with no time (probe, imported logs) all count
    assert.deepEqual(compareFrames([f('gateway', 'Keepalive')], []).map((d) => d.expected), ['Keepalive'])
  })
})
