/**
 * Where issued certificates land: `<dir>/<base>.pem` (0644) and `<dir>/<base>.key` (0600), each
 * written atomically beside its target. Existing files are never replaced unless asked: every
 * target is checked before the first write, and each write links rather than renames.
 */
import fs from 'node:fs'
import path from 'node:path'

import {configError, isErrnoException} from '../errors.js'
import {errText, writeFileAtomic} from '../config/safe-write.js'
import {type CaMaterial, loadCa} from './issue.js'

export const KEY_MODE = 0o600
export const CERT_MODE = 0o644

export interface OutputFile {
  path: string
  data: string | Uint8Array
  mode: number
}

/** Resolves a directory given with `flag`; throws `CERT_DIR_MISSING` if it is not one. */
export function checkDir(dir: string, flag: string): string {
  const resolved = path.resolve(dir)
  let st: fs.Stats
  try {
    st = fs.statSync(resolved)
  } catch (err) {
    throw configError(
      'CERT_DIR_MISSING',
      `${flag} directory ${dir} does not exist (${errText(err)})`,
      [`create it first: mkdir -p ${dir}`],
    )
  }

  if (!st.isDirectory()) throw configError('CERT_DIR_MISSING', `${flag} ${dir} is not a directory`)
  return resolved
}

/** Throws `CERT_FILE_EXISTS` naming every target that exists, unless `force`. */
export function checkWritable(files: OutputFile[], force: boolean): void {
  if (force) return
  const taken = files.filter((f) => fs.existsSync(f.path)).map((f) => f.path)
  if (taken.length === 0) return
  const what =
    taken.length === 1 ? `${taken[0]} already exists` : `${taken.join(', ')} already exist`
  throw configError('CERT_FILE_EXISTS', what, [
    'pass --force to replace them, or choose another --out directory',
  ])
}

/** Writes every file atomically; keys get 0600 from the start. */
export function writeOutputs(files: OutputFile[], force: boolean): void {
  checkWritable(files, force)
  for (const f of files) {
    try {
      writeFileAtomic(f.path, f.data, {mode: f.mode, overwrite: force})
    } catch (err) {
      if (isErrnoException(err) && err.code === 'EEXIST') checkWritable([f], false)
      throw configError('CERT_WRITE_FAILED', `cannot write ${f.path}: ${errText(err)}`)
    }
  }
}

/** Reads `ca.pem` and `ca.key` from a directory given with `--ca-dir`. */
export async function readCaDir(dir: string): Promise<CaMaterial> {
  const resolved = checkDir(dir, '--ca-dir')
  const read = (name: string) => {
    try {
      return fs.readFileSync(path.join(resolved, name), 'utf8')
    } catch (err) {
      throw configError('CERT_BAD_CA', `cannot read ${path.join(dir, name)}: ${errText(err)}`, [
        `make a CA first: anygate cert issue ca --out ${dir}`,
      ])
    }
  }

  return loadCa(read('ca.pem'), read('ca.key'), dir)
}
