import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {fitTable, humanAge, humanBytes} from '../../../src/lib/cli/control-flags.js'

const header = ['ID', 'USER', 'VPN-IP', 'REMOTE', 'AGE', 'IN', 'OUT', 'STATE']
const drop = ['AGE', 'OUT', 'IN', 'REMOTE']

describe('fitTable', () => {
  it('keeps every column when the table fits', () => {
    const rows = [header, ['3f9a0c5e21b7', 'alice', '198.19.0.2', '198.18.0.2', '12m', '1.5K', '400K', 'tls']]
    const {lines, dropped} = fitTable(rows, 80, drop)
    assert.deepEqual(dropped, [])
    assert.equal(lines[1], '3f9a0c5e21b7  alice  198.19.0.2  198.18.0.2  12m  1.5K  400K  tls')
  })

  it('drops columns in order until the widest IPv4 row fits 80 columns, never cutting an address', () => {
    const rows = [header, ['3f9a0c5e21b7', 'abcdefghijk…', '198.19.100.200', '198.18.200.200', '3h05m', '1000M', '1000M', 'dtls']]
    const {lines, dropped} = fitTable(rows, 80, drop)
    assert.ok(lines.every((l) => l.length <= 80), lines.join('\n'))
    assert.deepEqual(dropped, ['AGE'])
    assert.match(lines[1], /198\.19\.100\.200  198\.18\.200\.200/)
  })

  it('gives up the remote address last, for a long IPv6 client', () => {
    const rows = [header, ['3f9a0c5e21b7', 'abcdefghijk…', '198.19.100.200', '2001:db8:1234:5678:9abc:def0:1234:5678', '3h05m', '10M', '20M', 'tls']]
    const {lines, dropped} = fitTable(rows, 80, drop)
    assert.ok(lines.every((l) => l.length <= 80), lines.join('\n'))
    assert.deepEqual(dropped, ['AGE', 'OUT', 'IN', 'REMOTE'])
    assert.equal(fitTable(rows, 120, drop).dropped.length, 0)
  })
})

describe('human units', () => {
  it('prints bytes and ages short', () => {
    assert.deepEqual([humanBytes(1023), humanBytes(1536), humanBytes(5 * 1024 ** 3)], ['1023', '1.5K', '5.0G'])
    assert.deepEqual([humanAge(45), humanAge(720), humanAge(11_100), humanAge(187_200)], ['45s', '12m', '3h05m', '2d04h'])
  })
})
