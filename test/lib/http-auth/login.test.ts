import assert from 'node:assert/strict'
import {afterEach, describe, it} from 'node:test'

import {parseCidr} from '../../../src/lib/config/ip.js'
import {type AuthRequest, LoginHandler, type VerifyResult} from '../../../src/lib/http-auth/login.js'
import {noopLogger} from '../../../src/lib/log/logger.js'
import {AddressPool} from '../../../src/lib/session/pool.js'
import {SessionStore} from '../../../src/lib/session/store.js'

const users: Record<string, {password: string; groups: string[]}> = {
  alice: {password: 'secret', groups: []},
  bob: {password: 'hunter2', groups: ['eng']},
}

const checker = {
  async verify(user: string, password: string): Promise<VerifyResult> {
    const u = users[user]
    if (!u) return {ok: false, reason: 'unknown'}
    return u.password === password ? {ok: true, groups: u.groups} : {ok: false, reason: 'bad-password'}
  },
}

let stores: SessionStore[] = []
afterEach(() => {
  for (const s of stores) s.close()
  stores = []
})

function setup(groups: {name: string; label: string}[] = []) {
  const sessions = new SessionStore({v4: new AddressPool(parseCidr('198.19.0.0/24'))}, 60_000)
  stores.push(sessions)
  const handler = new LoginHandler({
    users: checker,
    sessions,
    groups,
    serverVersion: '0.1.0',
    serverCertSha1: 'AA',
    authTimeoutMs: 60_000,
    log: noopLogger,
  })
  return {handler, sessions}
}

const req = (body: string, cookieHeader?: string): AuthRequest => ({
  method: 'POST',
  path: '/',
  cookieHeader,
  userAgent: 'Open AnyConnect VPN Agent v9.01-3',
  remote: '198.18.0.2',
  body,
})

const reply = (user: string, password: string, group?: string) =>
  `<?xml version="1.0"?><config-auth client="vpn" type="auth-reply"><auth><username>${user}</username><password>${password}</password></auth>${group ? `<group-select>${group}</group-select>` : ''}</config-auth>`

const cookieOf = (headers: [string, string][], name: string) =>
  headers.map(([, v]) => v).find((v) => v.startsWith(`${name}=`))?.split(';')[0].slice(name.length + 1)

describe('LoginHandler', () => {
  it('answers init with the login form', async () => {
    const {handler} = setup()
    const r = await handler.handle(req('<config-auth type="init"></config-auth>'))
    assert.equal(r.status, 200)
    assert.match(r.body, /type="auth-request"/)
  })

  it('logs in and sets a 256-bit webvpn cookie that finds the session', async () => {
    const {handler, sessions} = setup()
    const r = await handler.handle(req(reply('alice', 'secret')))
    assert.equal(r.status, 200)
    assert.match(r.body, /type="complete"/)
    const cookie = cookieOf(r.headers, 'webvpn')
    assert.ok(cookie)
    assert.equal(Buffer.from(cookie, 'base64').length, 32)
    assert.ok(r.headers.some(([, v]) => v.startsWith('webvpn=') && v.includes('Secure; HttpOnly')))
    assert.equal(sessions.findByCookie(cookie)?.user, 'alice')
    // Another cookie of the same shape: the first character changed, never to itself
    const other = (cookie[0] === 'A' ? 'B' : 'A') + cookie.slice(1)
    assert.equal(sessions.findByCookie(other), undefined)
  })

  it('asks again with an error on a wrong password, then answers 401 on the third', async () => {
    const {handler} = setup()
    const first = await handler.handle(req(reply('alice', 'wrong')))
    assert.equal(first.status, 200)
    assert.match(first.body, /<error id="1">Login failed.<\/error>/)
    const ctx = cookieOf(first.headers, 'webvpncontext')
    const second = await handler.handle(req(reply('alice', 'wrong'), `webvpncontext=${ctx}`))
    assert.equal(second.status, 200)
    const third = await handler.handle(req(reply('alice', 'wrong'), `webvpncontext=${ctx}`))
    assert.equal(third.status, 401)
    assert.equal(third.close, true)
  })

  it('refuses an unknown user the same way as a wrong password', async () => {
    const {handler} = setup()
    const r = await handler.handle(req(reply('mallory', 'secret')))
    assert.match(r.body, /Login failed/)
  })

  it('gives the selected group to a member and refuses a non-member', async () => {
    const {handler, sessions} = setup([
      {name: 'eng', label: 'Engineering'},
      {name: 'ops', label: 'Operations'},
    ])
    const ok = await handler.handle(req(reply('bob', 'hunter2', 'Engineering')))
    assert.equal(sessions.findByCookie(cookieOf(ok.headers, 'webvpn') ?? '')?.group, 'eng')
    const denied = await handler.handle(req(reply('bob', 'hunter2', 'ops')))
    assert.match(denied.body, /not a member/)
  })

  it('offers the group list in the form', async () => {
    const {handler} = setup([{name: 'eng', label: 'Engineering'}])
    const r = await handler.handle({...req(''), method: 'GET'})
    assert.match(r.body, /<select name="group_list"/)
    assert.match(r.body, /<option value="DEFAULT" selected="true">Default<\/option>/)
  })

  it('gives the user their own first group for DEFAULT', async () => {
    const {handler, sessions} = setup([{name: 'eng', label: 'Engineering'}])
    const ok = await handler.handle(req(reply('bob', 'hunter2', 'DEFAULT')))
    assert.equal(sessions.findByCookie(cookieOf(ok.headers, 'webvpn') ?? '')?.group, 'eng')
  })

  it('takes the legacy form login', async () => {
    const {handler} = setup()
    const r = await handler.handle(req('username=alice&password=secret'))
    assert.match(r.body, /type="complete"/)
  })
})
