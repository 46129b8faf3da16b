import assert from 'node:assert/strict'
import fs from 'node:fs'
import {describe, it} from 'node:test'

import {emptyTranscript, type Step} from '../../../src/lib/replay/format.js'
import {parseOpenconnectLog} from '../../../src/lib/replay/import-openconnect.js'
import {parseTranscript} from '../../../src/lib/replay/reader.js'
import {redactTranscript} from '../../../src/lib/replay/redact.js'
import {refillAuth} from '../../../src/lib/replay/replayer.js'

const LOG = fs.readFileSync(new URL('../../fixtures/openconnect-ocserv-dump.log', import.meta.url), 'utf8')

describe('parseOpenconnectLog', () => {
  const t = parseOpenconnectLog(LOG, 'fixture')

  it('reads each request with its answer, the CONNECT and the first frames', () => {
    assert.deepEqual(t.steps.map((s) => `${s.kind} ${s.request.method} ${s.request.path} ${s.response.status}`), [
      'http POST / 200',
      'http POST /auth 200',
      'http POST /auth 200',
      'connect CONNECT /CSCOSSLC/tunnel 200',
    ])
    const connect = t.steps[3]
    assert.equal(connect.kind, 'connect')
    assert.deepEqual(connect.kind === 'connect' && connect.frames.slice(0, 2), [
      {from: 'gateway', type: 'Data', length: 76},
      {from: 'gateway', type: 'Data', length: 48},
    ])
    assert.ok(connect.response.headers.some(([k, v]) => k === 'X-CSTP-MTU' && v === '1472'))
    assert.match(t.steps[0].response.body, /<input type="text" name="username"/)
  })

  it('keeps none of the secrets openconnect printed', () => {
    const text = JSON.stringify(t)
    for (const secret of ['pr0be pass', 'ABNn3+1zNeJtQ5MMgQocLRgkygwiIi', 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAESkZz', 'bu:/&p:t']) {
      assert.ok(!text.includes(secret), `${secret} left in the transcript`)
    }

    assert.match(t.steps[2].request.body, /<password>\{\{password\}\}<\/password>/)
    assert.match(t.steps[1].request.body, /<username>\{\{user\}\}<\/username>/)
    assert.deepEqual(t.steps[3].request.headers.find(([k]) => k === 'Cookie'), ['Cookie', 'webvpn={{cookie:webvpn}}'])
  })

  it('skips progress lines that stdout put inside a request or an answer', () => {
    const lines = LOG.split('\n')
    const blank = lines.findIndex((l, i) => l === '> ' && lines[i + 1]?.includes('type="auth-reply"') && lines[i + 1].includes('<password>'))
    lines.splice(blank + 1, 0, 'Please enter your password.')
    const header = lines.findIndex((l) => l.startsWith('Set-Cookie: webvpn='))
    lines.splice(header, 0, 'Please enter your password.')
    const mixed = parseOpenconnectLog(lines.join('\n'))
    assert.deepEqual(mixed.steps.map((s) => [s.request.body, s.response.headers.length]), t.steps.map((s) => [s.request.body, s.response.headers.length]))
  })

  it('gives a transcript the reader accepts', () => {
    assert.equal(parseTranscript(JSON.stringify(t)).steps.length, 4)
  })
})

describe('redactTranscript', () => {
  it('hides a secret wherever it appears again, and a token in a complete answer', () => {
    const t = emptyTranscript('test')
    const step: Step = {
      kind: 'http',
      request: {method: 'POST', path: '/', headers: [['Cookie', 'webvpncontext=S3cr3tValue']], body: 'x-S3cr3tValue'},
      response: {status: 200, statusText: 'OK', headers: [], body: '<config-auth type="complete"><session-token>T0kenT0ken</session-token></config-auth>'},
    }
    t.steps.push(step)
    const out = JSON.stringify(redactTranscript(t))
    assert.ok(!out.includes('S3cr3tValue') && !out.includes('T0kenT0ken'))
    assert.match(out, /x-\{\{cookie:webvpncontext\}\}/)
  })
})

describe('refillAuth', () => {
  const reply = '<config-auth client="vpn" type="auth-reply"><auth><username>{{user}}</username></auth></config-auth>'

  it('fills a live form that asks for more, as a client would', () => {
    const recorded = {action: '/auth', method: 'post', inputs: [{type: 'text', name: 'username'}], selects: []}
    const live = {action: '/', method: 'post', inputs: [{type: 'text', name: 'username'}, {type: 'password', name: 'password'}], selects: []}
    assert.match(refillAuth(reply, recorded, live), /<auth><username>\{\{user\}\}<\/username><password>\{\{password\}\}<\/password><\/auth>/)
  })

  it('renames a field the live form calls otherwise', () => {
    const recorded = {action: '/', method: 'post', inputs: [{type: 'text', name: 'username'}], selects: []}
    const live = {action: '/', method: 'post', inputs: [{type: 'text', name: 'login'}], selects: []}
    assert.match(refillAuth(reply, recorded, live), /<auth><login>\{\{user\}\}<\/login><\/auth>/)
  })
})
