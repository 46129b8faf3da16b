import path from 'node:path'

import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../../lib/cli/base-command.js'
import {caDirFlag, certFlags, type IssueResult, issueSummary, keySpecOf} from '../../../lib/cli/cert-flags.js'
import {readNewSecret} from '../../../lib/cli/read-secret.js'
import {
  CERT_MODE,
  checkDir,
  checkWritable,
  KEY_MODE,
  readCaDir,
  writeOutputs,
} from '../../../lib/pki/files.js'
import {describeCertificate, parseCertificates} from '../../../lib/pki/inspect.js'
import {issueClient, LEAF_DAYS, MAX_DAYS, validateClientName} from '../../../lib/pki/issue.js'
import {exportPkcs12} from '../../../lib/pki/p12.js'

export default class CertIssueClient extends BaseCommand {
  static override args = {
    name: Args.string({
      description: 'User the certificate is for; becomes its common name and file names.',
      required: true,
    }),
  }

  static override description = `Makes NAME.pem, NAME.key (mode 0600) and NAME.p12 for \
certificate login, signed by the CA in --ca-dir, with CN = NAME and the clientAuth extended key \
usage. NAME.p12 holds the key, the certificate and the CA, protected by a password: import it \
into Cisco Secure Client's certificate store, or give it to openconnect with -c NAME.p12.

The .p12 password is asked twice on a terminal, or read from the first line of standard input \
with --p12-password-stdin. openssl's default encryption (AES-256, SHA-256 MAC) suits current \
Windows, Linux and openconnect; --legacy-p12 uses 3DES and a SHA-1 MAC for macOS Keychain and \
older Windows.`

  static override enableJsonFlag = true

  static override examples = [
    '<%= config.bin %> <%= command.id %> alice --ca-dir /etc/anygate/pki --out ./clients',
    `printf '%s\\n' "$P12_PASSWORD" | <%= config.bin %> <%= command.id %> bob --ca-dir ./pki --out ./clients --p12-password-stdin --legacy-p12`,
  ]

  static override flags = {
    'ca-dir': caDirFlag,
    days: Flags.integer({
      default: LEAF_DAYS,
      description: 'Days the certificate stays valid.',
      max: MAX_DAYS,
      min: 1,
    }),
    'legacy-p12': Flags.boolean({
      description:
        'Encrypt the .p12 with 3DES and a SHA-1 MAC, for macOS Keychain and Windows before 10 1709.',
    }),
    'p12-password-stdin': Flags.boolean({
      description:
        'Read the .p12 password from the first line of standard input instead of asking.',
    }),
    ...certFlags,
  }

  static override summary =
    'Make a client certificate signed by the CA (NAME.pem, NAME.key, NAME.p12).'

  async run(): Promise<IssueResult> {
    const {args, flags} = await this.parse(CertIssueClient)
    validateClientName(args.name)
    const dir = checkDir(flags.out, '--out')
    const [certPath, keyPath, p12Path] = ['pem', 'key', 'p12'].map((ext) =>
      path.join(dir, `${args.name}.${ext}`),
    )
    const ca = await readCaDir(flags['ca-dir'])
    checkWritable(
      [certPath, keyPath, p12Path].map((p) => ({path: p, data: '', mode: 0})),
      flags.force,
    )

    const password = await readNewSecret({
      what: `.p12 password for ${args.name}`,
      stdinFlag: 'p12-password-stdin',
      fromStdin: flags['p12-password-stdin'],
    })
    const issued = await issueClient(ca, {
      name: args.name,
      days: flags.days,
      key: keySpecOf(flags.rsa),
    })
    const p12 = await exportPkcs12({
      ...issued,
      chainPem: ca.certPem,
      name: args.name,
      password,
      legacy: flags['legacy-p12'],
      workDir: dir,
    })
    writeOutputs(
      [
        {path: certPath, data: issued.certPem, mode: CERT_MODE},
        {path: keyPath, data: issued.keyPem, mode: KEY_MODE},
        {path: p12Path, data: p12, mode: KEY_MODE},
      ],
      flags.force,
    )

    if (issued.clampedToCa) this.warn("validity cut to the CA certificate's own expiry")
    const info = describeCertificate(parseCertificates(Buffer.from(issued.certPem), certPath)[0])
    const result = {
      files: [certPath, keyPath, p12Path],
      subject: info.subject,
      notAfter: info.notAfter,
      pin: info.pin,
    }
    for (const line of issueSummary(result)) this.log(line)
    return result
  }
}
