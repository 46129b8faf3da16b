import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {
  describeHash,
  HashScheme,
  hashPassword,
  md5Crypt,
  isCheckable,
  verifyPassword,
} from '../../../src/lib/config/password-hash.js'

/** `openssl passwd` as the reference crypt(3) for $1$, $5$ and $6$. */
function opensslPasswd(scheme: '1' | '5' | '6', salt: string, password: string): string {
  return execFileSync('openssl', ['passwd', `-${scheme}`, '-salt', salt, '-stdin'], {
    input: password + '\n',
  })
    .toString()
    .trim()
}

const PASSWORDS = [
  'password',
  '',
  'x',
  'exactly sixteen!',
  'a much longer password than sixteen bytes',
  'pässwörd ✓',
]

describe('md5Crypt', () => {
  for (const pw of PASSWORDS) {
    it(`matches openssl passwd -1 for ${JSON.stringify(pw)}`, () => {
      const expected = opensslPasswd('1', 'saltsalt', pw)
      assert.equal(md5Crypt(pw, '$1$saltsalt'), expected)
      assert.equal(md5Crypt(pw, expected), expected)
    })
  }

  it('uses at most 8 salt characters, as glibc does', () => {
    assert.equal(md5Crypt('pw', '$1$0123456789'), opensslPasswd('1', '01234567', 'pw'))
  })
})

describe('verifyPassword', () => {
  it('accepts $1$, $5$ and $6$ hashes made by openssl', () => {
    for (const scheme of ['1', '5', '6'] as const) {
      const hash = opensslPasswd(scheme, 'NaCl4you', 'correct horse')
      assert.equal(verifyPassword('correct horse', hash), true, hash)
      assert.equal(verifyPassword('correct horsf', hash), false, hash)
    }
  })

  it('honours rounds= in $5$ and $6$', () => {
    // Vectors from the SHA-crypt specification's test suite.
    const vectors: [string, string][] = [
      [
        'Hello world!',
        '$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA',
      ],
      [
        'Hello world!',
        '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
      ],
      [
        'we have a short salt string but not a short password',
        '$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0',
      ],
    ]
    for (const [pw, hash] of vectors) {
      assert.equal(verifyPassword(pw, hash), true, hash)
      assert.equal(verifyPassword(pw + '!', hash), false, hash)
    }
  })

  it('accepts the $5$ hash that the real ocpasswd writes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'anygate-hash-'))
    try {
      const file = join(dir, 'passwd')
      execFileSync('ocpasswd', ['-c', file, 'alice'], {input: 's3cret\ns3cret\n'})
      const hash = readFileSync(file, 'utf8').trim().split(':')[2]
      assert.match(hash, /^\$5\$/)
      assert.equal(verifyPassword('s3cret', hash), true)
      assert.equal(verifyPassword('s3cret ', hash), false)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('never matches an empty, locked, damaged or unsupported hash', () => {
    const good = hashPassword('pw')
    assert.equal(verifyPassword('', ''), false)
    assert.equal(verifyPassword('pw', '!' + good), false)
    assert.equal(verifyPassword('pw', good.slice(0, -1)), false)
    assert.equal(verifyPassword('pw', good.replace('$6$', '$6$~')), false)
    assert.equal(
      verifyPassword(
        'pw',
        '$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7',
      ),
      false,
    )
    assert.equal(verifyPassword('pw', '*'), false)
  })
})

describe('verifyPassword with the system crypt (native/crypt.c)', () => {
  // Made with Python's crypt module, another caller of the same libxcrypt: the schemes ocserv
  // takes through crypt(3) beyond the three anygate computes itself.
  const vectors: [string, string][] = [
    ['yescrypt', '$y$j9T$F5Jx5fExrKuPp53xLKQ..1$zwtVrjrUCmXcyLTs6oxLTQlzifSUkF8RHJ./tK5KU79'],
    ['bcrypt', '$2b$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2'],
    ['scrypt', '$7$CU..../....abcdefghijklmnop$wOaHrgxgyKv4FQ2e7tZJ6BboaneHJOB6e0NHrTk0.n/'],
    ['des-crypt', 'abhfCpXqd4GrI'],
  ]

  for (const [scheme, hash] of vectors) {
    it(`checks a ${scheme} hash`, () => {
      assert.deepEqual(describeHash(hash), {unsupported: scheme})
      assert.equal(isCheckable(hash), true)
      assert.equal(verifyPassword('correct horse', hash), true)
      // (DES reads only the first 8 characters, so the difference is early)
      assert.equal(verifyPassword('Correct horse', hash), false)
      assert.equal(verifyPassword('correct horse', '!' + hash), false)
    })
  }

  it('matches nothing for a password with a NUL or a setting crypt refuses', () => {
    assert.equal(verifyPassword('correct horse\0', vectors[0][1]), false)
    assert.equal(verifyPassword('correct horse', '$y$j9T$'), false)
    assert.equal(isCheckable('$zz$abc$def'), false)
  })
})

describe('hashPassword', () => {
  it('writes $6$ with a 16-character salt by default, and openssl agrees', () => {
    const hash = hashPassword('tr0ub4dor')
    const m = hash.match(/^\$6\$([./0-9A-Za-z]{16})\$[./0-9A-Za-z]{86}$/)
    assert.ok(m, hash)
    assert.equal(opensslPasswd('6', m[1], 'tr0ub4dor'), hash)
    assert.equal(verifyPassword('tr0ub4dor', hash), true)
  })

  it('writes $5$ when asked, and openssl agrees', () => {
    const hash = hashPassword('tr0ub4dor', 'sha256')
    const m = hash.match(/^\$5\$([./0-9A-Za-z]{16})\$[./0-9A-Za-z]{43}$/)
    assert.ok(m, hash)
    assert.equal(opensslPasswd('5', m[1], 'tr0ub4dor'), hash)
  })

  it('draws a fresh salt every time', () => {
    assert.notEqual(hashPassword('same'), hashPassword('same'))
  })
})

describe('describeHash', () => {
  it('names the schemes it checks and those it only recognises', () => {
    assert.deepEqual(describeHash('$1$abc$def'), {scheme: HashScheme.Md5Crypt})
    assert.deepEqual(describeHash('$5$abc$def'), {scheme: HashScheme.Sha256Crypt})
    assert.deepEqual(describeHash('$6$rounds=9999$abc$def'), {scheme: HashScheme.Sha512Crypt})
    assert.deepEqual(describeHash('$y$j9T$abc$def'), {unsupported: 'yescrypt'})
    assert.deepEqual(describeHash('$2b$10$abcdefghijklmnopqrstuu'), {unsupported: 'bcrypt'})
    assert.deepEqual(describeHash('abJnggxhB/yWI'), {unsupported: 'des-crypt'})
    assert.deepEqual(describeHash('*'), {unsupported: 'unknown'})
  })
})
