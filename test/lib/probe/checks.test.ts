import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {type Check, type LegacyLoginObservation, gradeAuth, gradeDtls, gradeExpiry, gradeLegacyLogin, gradeLogin, gradeTls, gradeTunnel, verdicts} from '../../../src/lib/probe/checks.js'

const byId = (checks: Check[], id: string) => {
  const c = checks.find((x) => x.id === id)
  assert.ok(c, `no check ${id}`)
  return c
}

const now = new Date('2026-12-03T00:00:00Z')
const cert = (name: string, validFrom: string, validTo: string) => ({name, validFrom: new Date(validFrom), validTo: new Date(validTo)})
const leaf = cert('leaf "vpn"', '2026-01-01', '2027-12-03')
const intermediate = cert('intermediate "Issuing CA"', '2025-01-01', '2030-01-01')
const root = cert('root "Root CA"', '2020-01-01', '2040-01-01')
const tls = {
  protocol: 'TLSv1.3',
  cipher: 'TLS_AES_256_GCM_SHA384',
  versions: {tls12: true, tls13: true},
  chain: [leaf],
  hostnameMatches: true,
  isTrusted: true,
  pin: 'pin-sha256:AAA',
  now,
}

const connected: [string, string][] = [
  ['X-CSTP-Version', '1'],
  ['X-CSTP-Address', '198.19.0.2'],
  ['X-CSTP-Netmask', '255.255.255.0'],
  ['X-CSTP-DPD', '90'],
  ['X-CSTP-Keepalive', '32400'],
  ['X-CSTP-Rekey-Method', 'new-tunnel'],
  ['X-CSTP-Rekey-Time', '172800'],
  ['X-CSTP-Base-MTU', '1500'],
  ['X-CSTP-MTU', '1430'],
]

describe('probe grading', () => {
  it('passes a healthy TLS setup', () => {
    assert.ok(gradeTls(tls).every((c) => c.status === 'pass'))
  })

  it('grades expiry: fail when expired, warn within 30 days', () => {
    assert.equal(byId(gradeTls({...tls, chain: [{...leaf, validTo: new Date('2026-12-01')}]}), 'tls.expiry').status, 'fail')
    assert.equal(byId(gradeTls({...tls, chain: [{...leaf, validTo: new Date('2026-12-20')}]}), 'tls.expiry').status, 'warn')
    assert.equal(byId(gradeTls(tls), 'tls.expiry').detail, 'valid until 2027-12-03')
  })

  it('grades every certificate of the chain and names the one at fault', () => {
    const ok = gradeExpiry([leaf, intermediate, root], now)
    assert.equal(ok.status, 'pass')
    assert.equal(ok.detail, 'all 3 valid; leaf "vpn" ends first, on 2027-12-03')

    const soon = gradeExpiry([leaf, {...intermediate, validTo: new Date('2026-12-20T12:00:00Z')}, root], now)
    assert.deepEqual([soon.id, soon.status, soon.detail], ['tls.expiry', 'warn', 'intermediate "Issuing CA" expires in 17 days'])

    const expired = gradeExpiry([leaf, intermediate, {...root, validTo: new Date('2026-11-30T00:00:00Z')}], now)
    assert.equal(expired.status, 'fail')
    assert.equal(expired.detail, 'root "Root CA" expired on 2026-11-30')

    const early = gradeExpiry([leaf, {...intermediate, validFrom: new Date('2027-01-01T00:00:00Z')}], now)
    assert.equal(early.status, 'fail')
    assert.equal(early.detail, 'intermediate "Issuing CA" not valid until 2027-01-01')
  })

  it('fails an expired certificate before a not yet valid one, and counts the others', () => {
    const past = new Date('2026-01-01T00:00:00Z')
    const c = gradeExpiry([{...leaf, validFrom: new Date('2027-01-01')}, {...intermediate, validTo: past}, {...root, validTo: past}], now)
    assert.equal(c.detail, 'intermediate "Issuing CA" expired on 2026-01-01 (and 1 more)')
  })

  it('fails a host name mismatch unless a pin was given', () => {
    assert.equal(byId(gradeTls({...tls, hostnameMatches: false}), 'tls.hostname').status, 'fail')
    assert.equal(byId(gradeTls({...tls, hostnameMatches: false, expectedPin: 'pin-sha256:AAA'}), 'tls.hostname').status, 'warn')
  })

  it('fails a pin mismatch and warns on an untrusted chain', () => {
    assert.equal(byId(gradeTls({...tls, expectedPin: 'pin-sha256:BBB'}), 'tls.trust').status, 'fail')
    assert.equal(byId(gradeTls({...tls, isTrusted: false}), 'tls.trust').status, 'warn')
  })

  it('warns Cisco clients when TLS 1.2 is refused', () => {
    const c = byId(gradeTls({...tls, versions: {tls12: false, tls13: true}}), 'tls.versions')
    assert.equal(c.status, 'warn')
    assert.deepEqual(c.affects, ['cisco'])
  })

  it('fails an init that is not answered with XML', () => {
    const checks = gradeAuth({initStatus: 404, isXml: false, hasTranscend: false, formFields: [], groups: [], legacyGetWorks: false})
    assert.equal(byId(checks, 'auth.init').status, 'fail')
    assert.match(byId(checks, 'auth.init').detail, /group URL/)
  })

  it('grades the login form and the legacy flow', () => {
    const checks = gradeAuth({initStatus: 200, isXml: true, hasTranscend: false, formFields: ['username'], groups: ['Eng'], legacyGetWorks: false})
    assert.equal(byId(checks, 'auth.transcend').status, 'warn')
    assert.match(byId(checks, 'auth.form').detail, /password in a later form/)
    assert.equal(byId(checks, 'auth.legacy').status, 'warn')
    assert.equal(byId(checks, 'auth.groups').detail, 'groups offered: Eng')
  })

  it('grades the legacy GET even when the XML init is refused', () => {
    const checks = gradeAuth({initStatus: 404, isXml: false, hasTranscend: false, formFields: [], groups: [], legacyGetWorks: true})
    assert.deepEqual(checks.map((c) => [c.id, c.status]), [['auth.init', 'fail'], ['auth.legacy', 'pass']])
  })

  it('grades the legacy form login for openconnect only', () => {
    const good: LegacyLoginObservation = {isComplete: true, hasCookie: true, connectStatusLine: 'HTTP/1.1 200 CONNECTED', isOnlyPath: false}
    const pass = gradeLegacyLogin(good)
    assert.deepEqual([pass.id, pass.status, pass.affects], ['auth.legacy-login', 'pass', ['openconnect']])
    assert.deepEqual(verdicts([{...pass, status: 'fail'}]), {cisco: 'pass', openconnect: 'fail'})

    const refused = gradeLegacyLogin({...good, isComplete: false, hasCookie: false, connectStatusLine: undefined, error: 'Login failed.'})
    assert.equal(refused.status, 'warn')
    assert.equal(refused.detail, 'form login refused (Login failed.): openconnect --no-xmlpost cannot log in')
    assert.equal(gradeLegacyLogin({...good, hasCookie: false}).status, 'warn')
    assert.match(gradeLegacyLogin({...good, connectStatusLine: 'HTTP/1.1 401 Cookie is not acceptable'}).detail, /answered HTTP\/1.1 401/)
    assert.match(gradeLegacyLogin({...good, connectStatusLine: undefined, connectError: 'connection reset'}).detail, /failed \(connection reset\)/)
  })

  it('fails a broken legacy login when no XML login exists to fall back from', () => {
    const c = gradeLegacyLogin({isComplete: false, hasCookie: false, error: 'status 500 Internal Server Error', isOnlyPath: true})
    assert.equal(c.status, 'fail')
    assert.match(c.detail, /: openconnect cannot log in$/)
  })

  it('skips the legacy login with its reason', () => {
    const c = gradeLegacyLogin({skipped: 'the XML login with these credentials failed', isComplete: false, hasCookie: false, isOnlyPath: false})
    assert.equal(c.status, 'skip')
    assert.deepEqual(verdicts([c]), {cisco: 'pass', openconnect: 'pass'})
  })

  it('grades the login result and the cookie', () => {
    assert.equal(byId(gradeLogin({isComplete: false, error: 'Login failed.', cookieFromHeader: false, cookieFromToken: false, cookieFlags: ''}), 'login.result').status, 'fail')
    const ok = gradeLogin({isComplete: true, cookieFromHeader: true, cookieFromToken: false, cookieFlags: 'path=/'})
    assert.equal(byId(ok, 'login.cookie').status, 'pass')
    assert.equal(byId(ok, 'login.cookie-flags').status, 'warn')
    assert.equal(byId(gradeLogin({isComplete: true, cookieFromHeader: false, cookieFromToken: false, cookieFlags: ''}), 'login.cookie').status, 'fail')
  })

  it('passes a complete CONNECT answer and its DPD', () => {
    const checks = gradeTunnel({statusLine: 'HTTP/1.1 200 CONNECTED', headers: connected, dpdRttMs: 1.5})
    assert.deepEqual(checks.filter((c) => c.status !== 'pass').map((c) => c.id), ['tunnel.dtls-offer'])
  })

  it('fails a missing MTU, lower-case header names and a short DTLS session id', () => {
    const bad: [string, string][] = [
      ...connected.filter(([k]) => k !== 'X-CSTP-MTU'),
      ['x-cstp-banner', 'hi'],
      ['X-DTLS-Port', '443'],
      ['X-DTLS-Session-ID', 'abcd'],
    ]
    const checks = gradeTunnel({statusLine: 'HTTP/1.1 200 OK', headers: bad, dpdRttMs: 1})
    assert.equal(byId(checks, 'tunnel.mtu').status, 'fail')
    assert.equal(byId(checks, 'tunnel.header-case').status, 'fail')
    assert.equal(byId(checks, 'tunnel.dtls-offer').status, 'fail')
  })

  it('warns Cisco clients about rekey none and Lease-Duration none', () => {
    const h: [string, string][] = [...connected.filter(([k]) => k !== 'X-CSTP-Rekey-Method'), ['X-CSTP-Rekey-Method', 'none'], ['X-CSTP-Lease-Duration', 'none']]
    const checks = gradeTunnel({statusLine: 'HTTP/1.1 200 CONNECTED', headers: h, dpdRttMs: 1})
    assert.equal(byId(checks, 'tunnel.rekey').status, 'warn')
    assert.equal(byId(checks, 'tunnel.lease').status, 'warn')
    assert.deepEqual(verdicts(checks), {cisco: 'warn', openconnect: 'warn'})
  })

  it('fails a refused CONNECT and an unanswered DPD', () => {
    assert.equal(gradeTunnel({statusLine: 'HTTP/1.1 401 Cookie is not acceptable', headers: []})[0].status, 'fail')
    assert.equal(byId(gradeTunnel({statusLine: 'HTTP/1.1 200 CONNECTED', headers: connected}), 'tunnel.dpd').status, 'fail')
  })

  it('grades the DTLS channel: up with DPD, up without DPD, not up', () => {
    assert.equal(gradeDtls({established: true, cipher: 'PSK-AES-256-GCM', handshakeMs: 9, dpdRttMs: 1}).status, 'pass')
    assert.equal(gradeDtls({established: true, cipher: 'PSK-AES-256-GCM', error: 'timeout'}).status, 'warn')
    const down = gradeDtls({established: false, error: 'no DTLS handshake within 5000 ms'})
    assert.equal(down.status, 'fail')
    assert.match(down.detail, /within 5000 ms/)
  })

  it('charges a DTLS mode that fails to the family whose CONNECT got it, and no other', () => {
    const cisco = gradeDtls({established: false, error: 'no DTLS handshake within 5000 ms'}, {family: 'cisco', affects: ['cisco'], id: 'tunnel.dtls-as-cisco'})
    assert.equal(cisco.id, 'tunnel.dtls-as-cisco')
    assert.match(cisco.detail, /^as Cisco Secure Client: DTLS offered but not established/)
    const psk = gradeDtls({established: true, cipher: 'PSK-AES-256-GCM', handshakeMs: 9, dpdRttMs: 1}, {family: 'openconnect', affects: ['openconnect']})
    assert.deepEqual(verdicts([cisco, psk]), {cisco: 'fail', openconnect: 'pass'})
  })

  it('gives each family the worst status of the checks that matter to it', () => {
    const checks: Check[] = [
      {id: 'a', step: 'tls', status: 'pass', detail: ''},
      {id: 'b', step: 'tls', status: 'fail', detail: '', affects: ['openconnect']},
      {id: 'c', step: 'tls', status: 'warn', detail: '', affects: ['cisco']},
    ]
    assert.deepEqual(verdicts(checks), {cisco: 'warn', openconnect: 'fail'})
  })
})
