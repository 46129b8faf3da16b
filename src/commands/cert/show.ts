import path from 'node:path'

import {Args} from '@oclif/core'

import {BaseCommand} from '../../lib/cli/base-command.js'
import {
  type CertificateInfo,
  describeCertificate,
  readCertificateFile,
} from '../../lib/pki/inspect.js'

export interface CertShowResult extends CertificateInfo {
  file: string
  /** How many certificates the file holds; the first is the one shown. */
  certificatesInFile: number
}

export default class CertShow extends BaseCommand {
  static override args = {
    file: Args.string({
      description: 'Certificate file, PEM (the first certificate is shown) or DER.',
      required: true,
    }),
  }

  static override description = `Prints a certificate's subject, issuer, subject alternative \
names, validity, extended key usage and its SHA-256 pin. The pin is in the form openconnect \
takes it: openconnect --servercert pin-sha256:… trusts exactly that server key.`

  static override enableJsonFlag = true

  static override examples = [
    '<%= config.bin %> <%= command.id %> /var/lib/anygate/server.pem',
    '<%= config.bin %> <%= command.id %> ./pki/alice.pem --json',
  ]

  static override summary = 'Show what a certificate says, and its pin.'

  async run(): Promise<CertShowResult> {
    const {args} = await this.parse(CertShow)
    const file = path.resolve(args.file)
    const certs = readCertificateFile(file)
    const info = describeCertificate(certs[0])
    const result = {file, certificatesInFile: certs.length, ...info}

    const validity = info.daysLeft < 0 ? 'expired' : `${info.daysLeft} days left`
    const rows: [string, string][] = [
      ['subject', info.subject],
      ['issuer', info.issuer],
      ['names', info.sans.join(', ') || '-'],
      ['valid', `${info.notBefore} to ${info.notAfter} (${validity})`],
      ['key', info.keyType],
      ['usage', [...(info.isCa ? ['CA'] : []), ...info.extendedKeyUsage].join(', ') || '-'],
      ['serial', info.serialNumber],
      ['pin', info.pin],
    ]
    for (const [k, v] of rows) this.log(`${k.padEnd(8)} ${v}`)
    if (certs.length > 1)
      this.log(`(${file} holds ${certs.length} certificates; this is the first)`)
    return result
  }
}
