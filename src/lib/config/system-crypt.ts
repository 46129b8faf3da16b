/**
 * The system's crypt(3) (libxcrypt's crypt_rn, `native/crypt.c`), for the users-file hashes
 * anygate does not compute itself: yescrypt (`$y$`, Debian 12's `mkpasswd` default),
 * gost-yescrypt, scrypt, bcrypt, SHA-1 crypt, Sun MD5, BSDi and DES. ocserv hands every stored
 * hash to the same function, so with the addon a users file checks the same in both.
 *
 * Loaded once, lazily, in whichever thread asks (serve asks in its password worker). Without
 * the addon those schemes stay unchecked and `systemCryptError` says why.
 */
import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import {join} from 'node:path'

import {findPackageRoot} from '../tun/native.js'

interface CryptAddon {
  /** The full hash for `setting` (a stored hash or its salt part), or null when refused. */
  hash(password: string, setting: string): string | null
}

const ADDON_RELATIVE_PATH = join('build', 'Release', 'crypt.node')

let loaded: CryptAddon | undefined
let loadError: string | undefined
let isLoadTried = false

/** The addon, or undefined when it is not built or does not load. */
export function systemCrypt(): CryptAddon | undefined {
  if (isLoadTried) return loaded
  isLoadTried = true
  try {
    const root = findPackageRoot()
    const path = join(root, ADDON_RELATIVE_PATH)
    if (!existsSync(path)) {
      loadError = `${path} not found: run \`npm run build:native\``
      return undefined
    }

    const addon = createRequire(join(root, 'package.json'))(path) as Partial<CryptAddon>
    if (typeof addon.hash !== 'function') throw new Error('it lacks hash()')
    loaded = addon as CryptAddon
  } catch (err) {
    loadError = `cannot load the crypt addon: ${err instanceof Error ? err.message : String(err)}`
  }

  return loaded
}

/** Why the system's crypt is not in use; undefined when it is loaded or not tried yet. */
export function systemCryptError(): string | undefined {
  return loadError
}
