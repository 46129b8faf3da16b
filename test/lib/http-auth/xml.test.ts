import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {ProtocolError} from '../../../src/lib/errors.js'
import {
  buildAuthRequest,
  buildComplete,
  parseClientForm,
  parseClientXml,
  unescapeXml,
} from '../../../src/lib/http-auth/xml.js'

// Bodies as openconnect 9.01 sent them (auth-and-cstp.md §2.4, §2.7)
const init = `<?xml version="1.0" encoding="UTF-8"?>
<config-auth client="vpn" type="init" aggregate-auth-version="2">
<version who="vpn">v9.01-3</version>
<device-id>linux-64</device-id>
<capabilities><auth-method>single-sign-on-v2</auth-method></capabilities>
<group-access>https://198.18.0.1:4443/</group-access>
</config-auth>`

const reply = `<?xml version="1.0" encoding="UTF-8"?>
<config-auth client="vpn" type="auth-reply" aggregate-auth-version="2">
<version who="vpn">v9.01-3</version><device-id>linux-64</device-id>
<opaque is-for="sg"><tunnel-group>x</tunnel-group></opaque>
<auth><username>alice</username><password>p&amp;ss&#32;w&lt;rd&#x21;</password></auth>
<group-select>ops</group-select>
</config-auth>`

const rejects = (body: string, code: string) =>
  assert.throws(() => parseClientXml(body), (e: unknown) => e instanceof ProtocolError && e.code === code)

describe('aggregate-auth XML', () => {
  it('reads an init', () => {
    const m = parseClientXml(init)
    assert.equal(m.type, 'init')
    assert.equal(m.deviceId, 'linux-64')
    assert.equal(m.username, undefined)
  })

  it('reads an auth-reply with entities, opaque and group', () => {
    const m = parseClientXml(reply)
    assert.equal(m.type, 'auth-reply')
    assert.equal(m.username, 'alice')
    assert.equal(m.password, 'p&ss w<rd!')
    assert.equal(m.groupSelect, 'ops')
    assert.equal(m.hasOpaque, true)
  })

  it('takes a *_password field when there is no <password>', () => {
    const m = parseClientXml('<config-auth type="auth-reply"><auth><username>a</username><secondary_password>x</secondary_password></auth></config-auth>')
    assert.equal(m.password, 'x')
  })

  it('refuses entity declarations (no expansion)', () => {
    rejects('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><config-auth>&b;</config-auth>', 'AUTH_XML_DOCTYPE')
  })

  it('refuses malformed XML and other roots', () => {
    rejects('<config-auth><auth></config-auth>', 'AUTH_BAD_XML')
    rejects('<html><body/></html>', 'AUTH_BAD_XML')
  })

  it('reads the legacy form login', () => {
    const m = parseClientForm('group_list=DEFAULT&username=carol&password=se%2Bcret')
    assert.deepEqual([m.username, m.password, m.groupSelect], ['carol', 'se+cret', 'DEFAULT'])
  })

  it('leaves unknown entities as they are', () => {
    assert.equal(unescapeXml('a &nbsp; &#0; &amp;'), 'a &nbsp; &#0; &')
  })

  it('builds a form with username, password, escaped error and the chosen group first', () => {
    const xml = buildAuthRequest({
      message: 'Please log in',
      error: 'Login <failed>',
      groups: [
        {name: 'eng', label: 'Engineering'},
        {name: 'ops', label: 'Ops'},
      ],
      selectedGroup: 'ops',
      action: '/auth',
      serverVersion: '0.1.0',
    })
    assert.match(xml, /<config-auth client="vpn" type="auth-request"/)
    assert.match(xml, /<input type="text" name="username"/)
    assert.match(xml, /<input type="password" name="password"/)
    assert.match(xml, /<error id="1">Login &#60;failed&#62;<\/error>/)
    assert.ok(xml.indexOf('value="ops"') < xml.indexOf('value="eng"'))
  })

  it('puts the token in <session-token> of complete', () => {
    const xml = buildComplete({sessionId: '1', token: 'abc+/=', serverCertSha1: 'AB', serverVersion: '0.1.0'})
    assert.match(xml, /type="complete"/)
    assert.match(xml, /<session-token>abc\+\/=<\/session-token>/)
    assert.match(xml, /<auth id="success">/)
    assert.match(xml, /<server-cert-hash>AB<\/server-cert-hash>/)
  })
})
