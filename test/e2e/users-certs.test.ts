/**
 * The users file and the certificates against the real tools, in test namespaces:
 *
 * - ocserv reads a users file written by `anygate user add` (and changed by it while running),
 *   and serves a server certificate from `anygate cert issue server` that openconnect trusts
 *   through `--cafile ca.pem` alone; openconnect logs in with the `.p12` from
 *   `anygate cert issue client`.
 * - `anygate serve --cert server.pem --key server.key` takes a users file written by ocpasswd,
 *   openconnect logs in with `--cafile ca.pem` and no pin, and users added, locked and removed
 *   with `anygate user` take effect without a restart.
 *
 * Every step shares one net; `after` tears it down even when a step fails.
 */
import assert from 'node:assert/strict'
import {appendFileSync, copyFileSync, mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {UsersDb} from '../../src/lib/config/users-file.js'
import {createLogger} from '../../src/lib/log/logger.js'
import {ensureBuilt, runCli} from '../commands/cli.js'
import {startAnygate} from './harness/anygate.js'
import {createTestNet, type NetProcess, type TestNet} from './harness/netns.js'
import {skipUnlessReady} from './harness/wait.js'
import {type GatewayHandle, type TestUser, writeUsersFile} from './harness/ocserv.js'
import {authenticateOnly} from './harness/openconnect.js'

const TOOLS = ['ip', 'ss', 'openssl', 'ocserv', 'ocpasswd', 'openconnect']
const STEP = {timeout: 90_000}
const OCSERV_PORT = 443
const ANYGATE_PORT = 8443
const P12_PASSWORD = 'p12 pass'
/**
 * A yescrypt line (Debian 12 `mkpasswd`'s default) and a bcrypt one, both of password `correct
 * horse`, made by another libxcrypt caller (Python's crypt): ocserv and anygate hand both to
 * crypt(3).
 */
const SYSTEM_CRYPT_USERS = [
  ['yves', '$y$j9T$F5Jx5fExrKuPp53xLKQ..1$zwtVrjrUCmXcyLTs6oxLTQlzifSUkF8RHJ./tK5KU79'],
  ['bert', '$2b$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2'],
]
const SYSTEM_CRYPT_LINES = SYSTEM_CRYPT_USERS.map(([name, hash]) => `${name}:*:${hash}\n`).join('')

describe(
  'users file and certificates with ocserv, ocpasswd and openconnect',
  {skip: skipUnlessReady(TOOLS)},
  () => {
    let net: TestNet | undefined
    let pki: string
    let usersFile: string
    let ocserv: NetProcess

    before(async () => {
      ensureBuilt()
      net = await createTestNet()
      pki = join(net.dir, 'pki')
      mkdirSync(pki)
      await cli(['cert', 'issue', 'ca', '--out', pki, '--cn', 'e2e CA'])
      await cli([
        'cert',
        'issue',
        'server',
        '--ca-dir',
        pki,
        '--out',
        pki,
        '--host',
        net.server.address,
      ])
      await cli(
        ['cert', 'issue', 'client', 'alice', '--ca-dir', pki, '--out', pki, '--p12-password-stdin'],
        `${P12_PASSWORD}\n`,
      )

      usersFile = join(net.dir, 'users')
      await cli(
        ['user', 'add', 'alice', '--users', usersFile, '--group', 'eng', '--password-stdin'],
        'alice-pw\n',
      )
      await cli(['user', 'add', 'bob', '--users', usersFile, '--password-stdin'], 'bob-pw\n')
      await cli(
        ['user', 'add', 'carol', '--users', usersFile, '--hash', 'sha256', '--password-stdin'],
        'carol-pw\n',
      )
      await cli(['user', 'lock', 'bob', '--users', usersFile])
      ocserv = await startOcserv(net, pki, usersFile)
    })

    after(async () => {
      await net?.destroy()
    })

    const login = (
      user: string,
      password: string,
      port = OCSERV_PORT,
      extraArgs: string[] = [],
    ) => {
      const n = need(net)
      return authenticateOnly(n, {
        url: `https://${n.server.address}:${port}/`,
        user,
        password,
        cafile: join(pki, 'ca.pem'),
        extraArgs,
      })
    }

    it(
      'ocserv accepts $6$ and $5$ users written by anygate, trusted through --cafile only',
      STEP,
      async () => {
        for (const [user, password] of [
          ['alice', 'alice-pw'],
          ['carol', 'carol-pw'],
        ]) {
          const r = await login(user, password)
          assert.equal(
            r.code,
            0,
            `${user}: ${r.output}\n--- ocserv ---\n${ocserv.output.slice(-3000)}`,
          )
          assert.match(r.output, /COOKIE=/)
        }
      },
    )

    it(
      'ocserv refuses a wrong password, a user locked by anygate, and an unknown user',
      STEP,
      async () => {
        for (const [user, password] of [
          ['alice', 'wrong'],
          ['bob', 'bob-pw'],
          ['nobody', 'x'],
        ]) {
          const r = await login(user, password)
          assert.notEqual(r.code, 0, `${user} got in: ${r.output}`)
          assert.doesNotMatch(r.output, /COOKIE=/)
        }
      },
    )

    it('ocserv sees a user added by anygate while it runs, and one unlocked', STEP, async () => {
      await cli(['user', 'add', 'dave', '--users', usersFile, '--password-stdin'], 'dave-pw\n')
      await cli(['user', 'unlock', 'bob', '--users', usersFile])
      for (const [user, password] of [
        ['dave', 'dave-pw'],
        ['bob', 'bob-pw'],
      ]) {
        const r = await login(user, password)
        assert.equal(r.code, 0, `${user}: ${r.output}`)
      }
    })

    it('ocserv takes the yescrypt and bcrypt lines anygate takes', STEP, async () => {
      appendFileSync(usersFile, SYSTEM_CRYPT_LINES)
      for (const [user] of SYSTEM_CRYPT_USERS) {
        const r = await login(user, 'correct horse')
        assert.equal(r.code, 0, `${user}: ${r.output}\n--- ocserv ---\n${ocserv.output.slice(-3000)}`)
        assert.notEqual((await login(user, 'correct horsE')).code, 0, `${user} got in with a wrong password`)
      }
    })

    it('openconnect logs in to ocserv with the client .p12 from anygate', STEP, async () => {
      const r = await login('alice', '', OCSERV_PORT, [
        '-c',
        join(pki, 'alice.p12'),
        '--key-password',
        P12_PASSWORD,
      ])
      assert.equal(r.code, 0, `${r.output}\n--- ocserv ---\n${ocserv.output.slice(-3000)}`)
      assert.match(r.output, /Using client certificate 'alice'/)
      assert.match(r.output, /COOKIE=/)
    })

    it('UsersDb verifies a users file written by ocpasswd', STEP, async () => {
      const file = join(need(net).dir, 'ocpasswd-users')
      const users: TestUser[] = [
        {name: 'olga', password: 'olga-pw', group: 'staff'},
        {name: 'oleg', password: 'oleg-pw'},
      ]
      await writeUsersFile(need(net), file, users)
      const db = await UsersDb.open(file, createLogger({sink: () => {}}))
      try {
        assert.deepEqual(await db.verify('olga', 'olga-pw'), {ok: true, groups: ['staff']})
        assert.deepEqual(await db.verify('oleg', 'oleg-pw'), {ok: true, groups: []})
        assert.deepEqual(await db.verify('olga', 'oleg-pw'), {ok: false, reason: 'bad-password'})
      } finally {
        db.close()
      }
    })

    describe('anygate serve', () => {
      let gateway: GatewayHandle
      let servedUsers: string

      before(async () => {
        const n = need(net)
        // startAnygate reads <state>/server.pem for its pin; serve itself uses --cert/--key.
        const state = join(n.dir, 'anygate', 'state')
        mkdirSync(state, {recursive: true})
        copyFileSync(join(pki, 'server.pem'), join(state, 'server.pem'))
        gateway = await startAnygate(n, {
          port: ANYGATE_PORT,
          users: [{name: 'olga', password: 'olga-pw', group: 'staff'}],
          extraArgs: ['--cert', join(pki, 'server.pem'), '--key', join(pki, 'server.key')],
        })
        servedUsers = join(n.dir, 'anygate', 'users')
      })

      after(async () => {
        await gateway?.stop()
      })

      it(
        'takes a users file written by ocpasswd, trusted through --cafile only',
        STEP,
        async () => {
          const r = await login('olga', 'olga-pw', ANYGATE_PORT)
          assert.equal(r.code, 0, `${r.output}\n--- anygate ---\n${gateway.log().slice(-3000)}`)
          assert.match(r.output, /COOKIE=/)
          assert.notEqual((await login('olga', 'wrong', ANYGATE_PORT)).code, 0)
        },
      )

      it('takes yescrypt and bcrypt lines, as ocserv does, through the system crypt', STEP, async () => {
        const reloads = (gateway.log().match(/users file reloaded/g) ?? []).length
        appendFileSync(servedUsers, SYSTEM_CRYPT_LINES)
        await waitForLog(gateway, reloads + 1)
        for (const [user] of SYSTEM_CRYPT_USERS) {
          const r = await login(user, 'correct horse', ANYGATE_PORT)
          assert.equal(r.code, 0, `${user}: ${r.output}\n--- anygate ---\n${gateway.log().slice(-3000)}`)
          const wrong = await login(user, 'correct horsE', ANYGATE_PORT)
          assert.notEqual(wrong.code, 0, `${user} got in with a wrong password`)
        }
      })

      it(
        'picks up users added, locked and removed with anygate user, without a restart',
        STEP,
        async () => {
          const base = (gateway.log().match(/users file reloaded/g) ?? []).length
          await cli(
            ['user', 'add', 'erin', '--users', servedUsers, '--password-stdin'],
            'erin-pw\n',
          )
          await waitForLog(gateway, base + 1)
          assert.equal(
            (await login('erin', 'erin-pw', ANYGATE_PORT)).code,
            0,
            gateway.log().slice(-3000),
          )

          await cli(['user', 'lock', 'olga', '--users', servedUsers])
          await waitForLog(gateway, base + 2)
          assert.notEqual(
            (await login('olga', 'olga-pw', ANYGATE_PORT)).code,
            0,
            'a locked user got in',
          )

          await cli(['user', 'remove', 'erin', '--users', servedUsers])
          await waitForLog(gateway, base + 3)
          assert.notEqual(
            (await login('erin', 'erin-pw', ANYGATE_PORT)).code,
            0,
            'a removed user got in',
          )
        },
      )
    })
  },
)

async function cli(args: string[], input?: string): Promise<string> {
  const r = await runCli(args, {input})
  if (r.code !== 0) throw new Error(`anygate ${args.join(' ')} failed (${r.code}):\n${r.stderr}`)
  return r.stdout
}

/** Waits until serve has logged its `n`th 'users file reloaded'. */
async function waitForLog(gateway: GatewayHandle, n: number): Promise<void> {
  const deadline = Date.now() + 10_000
  while ((gateway.log().match(/users file reloaded/g) ?? []).length < n) {
    if (Date.now() > deadline) throw new Error(`no reload #${n}:\n${gateway.log().slice(-2000)}`)
    await sleep(50)
  }
}

/**
 * ocserv with our users file, our server certificate, and certificate login as an alternative
 * (`enable-auth`), CN as the user name, trusting our CA.
 */
async function startOcserv(net: TestNet, pki: string, usersFile: string): Promise<NetProcess> {
  const dir = join(net.dir, 'ocserv-ours')
  mkdirSync(dir)
  const config = [
    `auth = "plain[passwd=${usersFile}]"`,
    'enable-auth = "certificate"',
    `ca-cert = ${join(pki, 'ca.pem')}`,
    'cert-user-oid = 2.5.4.3',
    `server-cert = ${join(pki, 'server.pem')}`,
    `server-key = ${join(pki, 'server.key')}`,
    `listen-host = ${net.server.address}`,
    `tcp-port = ${OCSERV_PORT}`,
    'run-as-user = root',
    'run-as-group = root',
    'isolate-workers = false',
    `socket-file = ${join(dir, 'ocserv.sock')}`,
    `occtl-socket-file = ${join(dir, 'occtl.sock')}`,
    `pid-file = ${join(dir, 'ocserv.pid')}`,
    'max-clients = 16',
    'rate-limit-ms = 0',
    'max-ban-score = 0',
    'device = agus',
    `ipv4-network = ${net.pool.cidr}`,
  ]
  const configFile = join(dir, 'ocserv.conf')
  writeFileSync(configFile, `${config.join('\n')}\n`)
  const proc = net.spawn(net.server, 'ocserv', ['-f', '-d', '1', '-c', configFile])
  await net.waitForPort(net.server, OCSERV_PORT, {timeoutMs: 10_000, watched: proc})
  return proc
}

function need(net: TestNet | undefined): TestNet {
  if (!net) throw new Error('the test net was not created')
  return net
}
