/**
 * Flags shared by the `cert issue` commands, and the summary they print.
 */
import {Flags} from '@oclif/core'

import type {KeySpec} from '../pki/keys.js'
import {RSA_BITS} from '../pki/keys.js'

export const certFlags = {
  force: Flags.boolean({
    description: 'Replace files that already exist in the output directory.',
  }),
  out: Flags.string({
    description: 'Existing directory to write the files to.',
    helpValue: 'DIR',
    required: true,
  }),
  rsa: Flags.integer({
    description: `Make an RSA key of this many bits (${RSA_BITS.join(', ')}) instead of ECDSA P-256.`,
    helpValue: 'BITS',
  }),
}

/** The CA a leaf certificate is signed by (`cert issue server`, `cert issue client`). */
export const caDirFlag = Flags.string({
  description: 'Directory holding ca.pem and ca.key (from "cert issue ca").',
  helpValue: 'DIR',
  required: true,
})

export function keySpecOf(rsa: number | undefined): KeySpec {
  return rsa === undefined ? {type: 'ec'} : {type: 'rsa', bits: rsa}
}

export interface IssueResult {
  files: string[]
  subject: string
  notAfter: string
  pin: string
}

/** The lines `cert issue` prints for people; `--json` prints the IssueResult instead. */
export function issueSummary(r: IssueResult): string[] {
  return [
    ...r.files.map((f) => `wrote    ${f}`),
    `subject  ${r.subject}`,
    `expires  ${r.notAfter}`,
    `pin      ${r.pin}`,
  ]
}
