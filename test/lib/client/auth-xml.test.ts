import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {buildInit, buildReply, credentialValues, encodeForm, formFields, legacyHeaders, parseServerXml, pickOption} from '../../../src/lib/client/auth-xml.js'
import {parseClientForm, parseClientXml} from '../../../src/lib/http-auth/xml.js'
import {parseResponse} from '../../../src/lib/client/http-client.js'

// ocserv 1.1.6's first answer with groups (auth-and-cstp.md §2.5)
const ocservForm = `<?xml version="1.0" encoding="UTF-8"?>
<config-auth client="vpn" type="auth-request">
<version who="sg">0.1(1)</version>
<auth id="main">
<banner>Authorized use only</banner><message>Please enter your username.</message>
<form method="post" action="/auth">
<input type="text" name="username" label="Username:" />
<select name="group_list" label="Group:">
<option>DEFAULT</option>
<option value="eng">Engineering</option>
</select>
</form></auth>
</config-auth>`

describe('client side of the aggregate-auth XML', () => {
  it('reads an ocserv form with a group list', () => {
    const d = parseServerXml(ocservForm)
    assert.equal(d.type, 'auth-request')
    assert.equal(d.serverVersion, '0.1(1)')
    assert.equal(d.banner, 'Authorized use only')
    assert.equal(d.form?.action, '/auth')
    assert.deepEqual(d.form?.inputs.map((i) => i.name), ['username'])
    assert.deepEqual(d.form?.selects[0].options, [
      {value: 'DEFAULT', label: 'DEFAULT', selected: false},
      {value: 'eng', label: 'Engineering', selected: false},
    ])
  })

  it('builds a reply our own server reads, with the opaque echoed and the group at the root', () => {
    const form = parseServerXml(ocservForm.replace('<auth id="main">', '<opaque is-for="sg"><tunnel-group>x</tunnel-group></opaque><auth id="main">'))
    const xml = buildReply('cisco', form, {username: 'a<b'}, 'Engineering')
    assert.match(xml, /<opaque is-for="sg"><tunnel-group>x<\/tunnel-group><\/opaque>/)
    const m = parseClientXml(xml)
    assert.deepEqual([m.type, m.username, m.groupSelect, m.hasOpaque], ['auth-reply', 'a<b', 'eng', true])
  })

  it('builds an init our own server reads', () => {
    assert.equal(parseClientXml(buildInit('openconnect', 'https://198.18.0.1/')).type, 'init')
  })

  it('picks the requested option, else the selected one, else the first', () => {
    const s = {name: 'group_list', options: [{value: 'a', label: 'A', selected: false}, {value: 'b', label: 'B', selected: true}]}
    assert.equal(pickOption(s, 'a'), 'a')
    assert.equal(pickOption(s, 'B'), 'b')
    assert.equal(pickOption(s), 'b')
  })

  it('answers a form form-encoded as the legacy login does: group list first, then the inputs', () => {
    const d = parseServerXml(ocservForm)
    const pairs = formFields(d, credentialValues(d, 'carol', 'unused'), 'Engineering')
    assert.deepEqual(pairs, [['group_list', 'eng'], ['username', 'carol']])
    assert.equal(encodeForm(pairs), 'group_list=eng&username=carol')
  })

  it('puts the password in every password input and encodes it as our own server reads it', () => {
    const d = parseServerXml(ocservForm.replace('<input type="text" name="username" label="Username:" />', '<input type="password" name="password" label="Password:" /><input type="submit" name="go" />'))
    const body = encodeForm(formFields(d, credentialValues(d, 'carol', 'p&ss w=rd+%'), undefined))
    assert.equal(body, 'group_list=DEFAULT&password=p%26ss%20w%3Drd%2B%25')
    assert.equal(parseClientForm(body).password, 'p&ss w=rd+%')
  })

  it('sends the legacy header set: no X-Aggregate-Auth, the form content type', () => {
    const names = legacyHeaders().map(([k]) => k)
    assert.ok(!names.includes('X-Aggregate-Auth'))
    assert.deepEqual(legacyHeaders().find(([k]) => k === 'Content-Type'), ['Content-Type', 'application/x-www-form-urlencoded'])
    assert.ok(names.includes('X-Transcend-Version'))
  })

  it('reads the session token of a complete', () => {
    const d = parseServerXml('<?xml version="1.0"?><config-auth client="vpn" type="complete"><session-token>T0k+/=</session-token><auth id="success"/></config-auth>')
    assert.equal(d.sessionToken, 'T0k+/=')
  })
})

describe('HTTP response parsing', () => {
  it('waits for the whole body, then parses', () => {
    const raw = Buffer.from('HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 5\r\n\r\nhello')
    assert.equal(parseResponse(raw.subarray(0, raw.length - 1)), undefined)
    const r = parseResponse(raw)!
    assert.equal(r.res.body, 'hello')
    assert.equal(r.res.headers.filter(([k]) => k === 'Set-Cookie').length, 2)
  })

  it('reads chunked bodies and leaves CONNECT bytes after the header', () => {
    const chunked = Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n')
    assert.equal(parseResponse(chunked)!.res.body, 'abcde')
    const connect = Buffer.from('HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1430\r\n\r\nSTF\x01')
    assert.equal(parseResponse(connect, true)!.consumed, connect.length - 4)
  })

  it('rejects a line that is not HTTP', () => {
    assert.throws(() => parseResponse(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n')), /not an HTTP status line/)
  })
})
