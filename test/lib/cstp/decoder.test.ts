import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {CstpType} from '../../../src/lib/cstp/constants.js'
import {CstpDecoder} from '../../../src/lib/cstp/decoder.js'
import {encodeCstpFrame, encodeDisconnect} from '../../../src/lib/cstp/encoder.js'
import {ProtocolError} from '../../../src/lib/errors.js'

type Frame = [number, string]

function decodeAll(chunks: Buffer[], max = 1500): Frame[] {
  const out: Frame[] = []
  const d = new CstpDecoder(max, (type, payload) => out.push([type, payload.toString('hex')]))
  for (const c of chunks) d.push(c)
  return out
}

const ipPacket = Buffer.from('4500001c000040004001' + 'ab'.repeat(18), 'hex')
const stream = Buffer.concat([
  encodeCstpFrame(CstpType.Data, ipPacket),
  encodeCstpFrame(CstpType.DpdRequest),
  encodeCstpFrame(CstpType.Keepalive),
  encodeDisconnect(0xb0, 'Aborted by caller'),
])
const expected: Frame[] = [
  [0, ipPacket.toString('hex')],
  [3, ''],
  [7, ''],
  [5, 'b0' + Buffer.from('Aborted by caller').toString('hex')],
]

describe('CstpDecoder', () => {
  it('encodes the header as the spec lays it out', () => {
    assert.equal(encodeCstpFrame(CstpType.DpdResponse, Buffer.from([1, 2])).toString('hex'), '5354460100020400' + '0102')
    assert.equal(encodeDisconnect().toString('hex'), '5354460100000500')
  })

  it('decodes several frames from one chunk', () => {
    assert.deepEqual(decodeAll([stream]), expected)
  })

  it('decodes the stream fed one byte at a time', () => {
    const bytes = [...stream].map((b) => Buffer.from([b]))
    assert.deepEqual(decodeAll(bytes), expected)
  })

  it('decodes the stream split at every offset', () => {
    for (let i = 1; i < stream.length; i++) {
      assert.deepEqual(decodeAll([stream.subarray(0, i), stream.subarray(i)]), expected, `split at ${i}`)
    }
  })

  it('hands out views, not copies, when a frame lies in one chunk', () => {
    const views: Buffer[] = []
    const d = new CstpDecoder(1500, (_t, p) => views.push(p))
    d.push(stream)
    assert.equal(views[0].buffer, stream.buffer)
  })

  const rejects = (bytes: string, code: string, max = 1500) => {
    assert.throws(
      () => decodeAll([Buffer.from(bytes, 'hex')], max),
      (err: unknown) => err instanceof ProtocolError && err.code === code,
    )
  }

  it('rejects a bad magic', () => rejects('5354460200000000', 'CSTP_BAD_MAGIC'))
  it('rejects random bytes', () => rejects('474554202f20485454', 'CSTP_BAD_MAGIC'))
  it('rejects a non-zero reserved byte', () => rejects('5354460100000001', 'CSTP_BAD_HEADER'))
  it('rejects a length above the MTU before buffering it', () => rejects('53544601ffff0000', 'CSTP_BAD_LENGTH'))
  it('rejects a length above a lowered limit', () => rejects('5354460105dd0000', 'CSTP_BAD_LENGTH', 1500))
})
