import os from 'node:os'
import path from 'node:path'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../../../lib/cli/base-command.js'
import {certFlags, type IssueResult, issueSummary, keySpecOf} from '../../../lib/cli/cert-flags.js'
import {CERT_MODE, checkDir, KEY_MODE, writeOutputs} from '../../../lib/pki/files.js'
import {describeCertificate, parseCertificates} from '../../../lib/pki/inspect.js'
import {CA_DAYS, issueCa, MAX_DAYS} from '../../../lib/pki/issue.js'

export default class CertIssueCa extends BaseCommand {
  static override description = `Makes a self-signed certificate authority: ca.pem (the \
certificate, to give clients as their --cafile or to import as a trusted root) and ca.key (its \
private key, mode 0600, keep it safe). "cert issue server" and "cert issue client" sign with it.

The CA may sign end certificates only (path length 0). Existing files are not replaced without \
--force.`

  static override enableJsonFlag = true

  static override examples = [
    '<%= config.bin %> <%= command.id %> --out /etc/anygate/pki',
    `<%= config.bin %> <%= command.id %> --out ./pki --cn "Example VPN CA" --days 3650 --rsa 3072`,
  ]

  static override flags = {
    cn: Flags.string({
      description: 'Common name of the CA (default: "anygate CA <host name>").',
      helpValue: 'NAME',
    }),
    days: Flags.integer({
      default: CA_DAYS,
      description: 'Days the CA certificate stays valid.',
      max: MAX_DAYS,
      min: 1,
    }),
    ...certFlags,
  }

  static override summary = 'Make a certificate authority (ca.pem, ca.key).'

  async run(): Promise<IssueResult> {
    const {flags} = await this.parse(CertIssueCa)
    const dir = checkDir(flags.out, '--out')
    const certPath = path.join(dir, 'ca.pem')
    const keyPath = path.join(dir, 'ca.key')

    const issued = await issueCa({
      cn: flags.cn ?? `anygate CA ${os.hostname()}`.slice(0, 64),
      days: flags.days,
      key: keySpecOf(flags.rsa),
    })
    writeOutputs(
      [
        {path: certPath, data: issued.certPem, mode: CERT_MODE},
        {path: keyPath, data: issued.keyPem, mode: KEY_MODE},
      ],
      flags.force,
    )

    const info = describeCertificate(parseCertificates(Buffer.from(issued.certPem), certPath)[0])
    const result = {
      files: [certPath, keyPath],
      subject: info.subject,
      notAfter: info.notAfter,
      pin: info.pin,
    }
    for (const line of issueSummary(result)) this.log(line)
    return result
  }
}
