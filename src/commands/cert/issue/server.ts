import path from 'node:path'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../../../lib/cli/base-command.js'
import {caDirFlag, certFlags, type IssueResult, issueSummary, keySpecOf} from '../../../lib/cli/cert-flags.js'
import {
  CERT_MODE,
  checkDir,
  checkWritable,
  KEY_MODE,
  readCaDir,
  writeOutputs,
} from '../../../lib/pki/files.js'
import {describeCertificate, parseCertificates} from '../../../lib/pki/inspect.js'
import {classifyHost, issueServer, LEAF_DAYS, MAX_DAYS} from '../../../lib/pki/issue.js'

/** Apple platforms refuse TLS server certificates valid for longer. */
const APPLE_MAX_DAYS = 825

export default class CertIssueServer extends BaseCommand {
  static override description = `Makes server.pem and server.key for "anygate serve --cert \
server.pem --key server.key" (or ocserv), signed by the CA in --ca-dir. Every --host becomes a \
subject alternative name, as a DNS name or an IP address; the first is also the common name. The \
certificate carries the serverAuth extended key usage.

Clients that trust ca.pem (openconnect --cafile, or the CA imported into the system store for \
Cisco Secure Client) then connect without a pin.`

  static override enableJsonFlag = true

  static override examples = [
    '<%= config.bin %> <%= command.id %> --ca-dir /etc/anygate/pki --out /etc/anygate/pki --host vpn.example.com',
    '<%= config.bin %> <%= command.id %> --ca-dir ./pki --out ./pki --host vpn.example.com --host 198.18.0.1 --rsa 2048',
  ]

  static override flags = {
    'ca-dir': caDirFlag,
    days: Flags.integer({
      default: LEAF_DAYS,
      description: `Days the certificate stays valid (Apple clients refuse more than ${APPLE_MAX_DAYS}).`,
      max: MAX_DAYS,
      min: 1,
    }),
    host: Flags.string({
      delimiter: ',',
      description: 'DNS name or IP address clients connect to; repeat, or separate with commas.',
      helpValue: 'NAME_OR_IP',
      multiple: true,
      required: true,
    }),
    ...certFlags,
  }

  static override summary = 'Make a server certificate signed by the CA (server.pem, server.key).'

  async run(): Promise<IssueResult> {
    const {flags} = await this.parse(CertIssueServer)
    for (const h of flags.host) classifyHost(h)
    const dir = checkDir(flags.out, '--out')
    const certPath = path.join(dir, 'server.pem')
    const keyPath = path.join(dir, 'server.key')
    const ca = await readCaDir(flags['ca-dir'])
    checkWritable(
      [
        {path: certPath, data: '', mode: 0},
        {path: keyPath, data: '', mode: 0},
      ],
      flags.force,
    )
    const issued = await issueServer(ca, {
      hosts: flags.host,
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

    if (flags.days > APPLE_MAX_DAYS)
      this.warn(
        `macOS and iOS clients refuse server certificates valid for more than ${APPLE_MAX_DAYS} days`,
      )
    if (issued.clampedToCa) this.warn("validity cut to the CA certificate's own expiry")
    const info = describeCertificate(parseCertificates(Buffer.from(issued.certPem), certPath)[0])
    const result = {
      files: [certPath, keyPath],
      subject: info.subject,
      notAfter: info.notAfter,
      pin: info.pin,
    }
    for (const line of [...issueSummary(result), `names    ${info.sans.join(', ')}`]) this.log(line)
    return result
  }
}
