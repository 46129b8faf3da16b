import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {
  buildConnectResponse,
  computeMtu,
  isCiscoClient,
  parseTunnelRequest,
  tlsRecordOverhead,
} from '../../../src/lib/cstp/connect.js'
import {parseCidr} from '../../../src/lib/config/ip.js'

// The CONNECT openconnect 9.01 sent in the captured transcript (auth-and-cstp.md §3.1).
const openconnectHeaders = {
  'user-agent': 'Open AnyConnect VPN Agent v9.01-3',
  'x-cstp-version': '1',
  'x-cstp-hostname': 'vm',
  'x-cstp-base-mtu': '1500',
  'x-cstp-mtu': '1390',
  'x-cstp-address-type': 'IPv6,IPv4',
  'x-cstp-full-ipv6-capability': 'true',
}

const grant = {
  serverName: 'anygate 0.1.0',
  hostname: 'vm',
  ipv4: {address: '198.19.0.2', pool: parseCidr('198.19.0.0/24')},
  dns: ['198.19.0.1', '2001:2::1'],
  routes: [parseCidr('198.18.5.0/24')],
  noRoutes: [],
  dpd: 90,
  keepalive: 32400,
  idleTimeout: 1200,
  sessionTimeout: 0,
  sessionRemaining: 0,
  disconnectedTimeout: 300,
  rekeyTime: 172800,
  baseMtu: 1500,
  mtu: 1430,
}

function headerLines(text: string): string[] {
  return text.split('\r\n')
}

describe('CONNECT exchange', () => {
  it('reads what openconnect asks for', () => {
    const r = parseTunnelRequest(openconnectHeaders)
    assert.equal(r.baseMtu, 1500)
    assert.equal(r.clientMtu, 1390)
    assert.ok(r.wantsIpv4 && r.wantsIpv6 && r.fullIpv6)
    assert.equal(r.isAnyConnect, false)
    assert.equal(r.hostname, 'vm')
  })

  it('drops an invalid host name and MTU', () => {
    const r = parseTunnelRequest({'x-cstp-hostname': 'bad\nname', 'x-cstp-base-mtu': '15x00'})
    assert.equal(r.hostname, undefined)
    assert.equal(r.baseMtu, undefined)
  })

  it('tells Cisco clients from openconnect by User-Agent', () => {
    assert.equal(isCiscoClient('Cisco AnyConnect VPN Agent for Windows 4.10.05095'), true)
    assert.equal(isCiscoClient('AnyConnect Windows 4.10.05095'), true)
    assert.equal(isCiscoClient('AnyConnect-compatible OpenConnect VPN Agent v9.12'), false)
    assert.equal(isCiscoClient('Open AnyConnect VPN Agent v9.01-3'), false)
  })

  it('computes the MTU from the client base MTU and the TLS 1.3 overhead', () => {
    const req = parseTunnelRequest(openconnectHeaders)
    const tls = tlsRecordOverhead('TLSv1.3', 'TLS_AES_256_GCM_SHA384')
    assert.equal(tls, 22)
    // 1500 - 20 IPv4 - 20 TCP - 22 TLS record - 8 CSTP
    assert.deepEqual(computeMtu({ourMtu: 1500, req, remoteIsIpv6: false, tlsOverhead: tls}), {baseMtu: 1500, mtu: 1430})
    assert.deepEqual(computeMtu({ourMtu: 1400, req, remoteIsIpv6: true, tlsOverhead: tls}), {baseMtu: 1400, mtu: 1310})
  })

  it('uses X-CSTP-MTU when an old client sends no base MTU', () => {
    const req = parseTunnelRequest({'x-cstp-mtu': '1300'})
    const r = computeMtu({ourMtu: 1500, req, remoteIsIpv6: false, tlsOverhead: 29})
    assert.equal(r.mtu, 1300)
  })

  it('answers with 200 CONNECTED and exact header names', () => {
    const text = buildConnectResponse(parseTunnelRequest(openconnectHeaders), grant)
    const lines = headerLines(text)
    assert.equal(lines[0], 'HTTP/1.1 200 CONNECTED')
    assert.ok(text.endsWith('\r\n\r\n'))
    for (const want of [
      'X-CSTP-Version: 1',
      'X-CSTP-Protocol: Copyright (c) 2004 Cisco Systems, Inc.',
      'X-CSTP-Address: 198.19.0.2',
      'X-CSTP-Netmask: 255.255.255.0',
      'X-CSTP-DNS: 198.19.0.1',
      'X-CSTP-Split-Include: 198.18.5.0/255.255.255.0',
      'X-CSTP-Tunnel-All-DNS: false',
      'X-CSTP-DPD: 90',
      'X-CSTP-Keepalive: 32400',
      'X-CSTP-Idle-Timeout: 1200',
      'X-CSTP-Session-Timeout: none',
      'X-CSTP-Disconnected-Timeout: 300',
      'X-CSTP-Keep: true',
      'X-CSTP-Rekey-Method: new-tunnel',
      'X-CSTP-Rekey-Time: 172800',
      'X-CSTP-Base-MTU: 1500',
      'X-CSTP-MTU: 1430',
    ]) {
      assert.ok(lines.includes(want), `missing ${want}`)
    }

    // No IPv6 pool: the IPv6 DNS server is not offered, and no DTLS header without DTLS.
    assert.ok(!text.includes('2001:2::1'))
    assert.ok(!text.includes('X-DTLS'))
  })

  it('sends IPv6 to full-IPv6 clients, and DNS-IP6 to Cisco clients', () => {
    const v6 = {...grant, ipv6: {address: '2001:2::2', pool: parseCidr('2001:2::/64')}}
    const cisco = parseTunnelRequest({...openconnectHeaders, 'user-agent': 'AnyConnect Windows 4.10.05095'})
    const text = buildConnectResponse(cisco, v6)
    assert.ok(headerLines(text).includes('X-CSTP-Address-IP6: 2001:2::2/64'))
    assert.ok(headerLines(text).includes('X-CSTP-DNS-IP6: 2001:2::1'))
    const oc = buildConnectResponse(parseTunnelRequest(openconnectHeaders), v6)
    assert.ok(headerLines(oc).includes('X-CSTP-DNS: 2001:2::1'))
  })

  it('gives a client without full IPv6 capability its address with the network and prefix, as ocserv', () => {
    const v6 = {...grant, ipv4: undefined, ipv6: {address: '2001:2::2a', pool: parseCidr('2001:2::/64')}}
    const req = parseTunnelRequest({...openconnectHeaders, 'x-cstp-full-ipv6-capability': undefined, 'x-cstp-address-type': 'IPv6'})
    const lines = headerLines(buildConnectResponse(req, v6))
    assert.ok(lines.includes('X-CSTP-Address: 2001:2::2a'), lines.join('\n'))
    assert.ok(lines.includes('X-CSTP-Netmask: 2001:2::/64'), lines.join('\n'))
    assert.ok(!lines.some((l) => l.startsWith('X-CSTP-Address-IP6')))
  })

  it('sends no split routes and tunnels all DNS for a full tunnel', () => {
    const text = buildConnectResponse(parseTunnelRequest(openconnectHeaders), {...grant, routes: []})
    assert.ok(!text.includes('Split-Include'))
    assert.ok(headerLines(text).includes('X-CSTP-Tunnel-All-DNS: true'))
  })
})
