import chalk from 'chalk'

import {BaseCommand} from '../../lib/cli/base-command.js'
import {resolveUsersFile, usersFlag} from '../../lib/cli/user-flags.js'
import {describeHash} from '../../lib/config/password-hash.js'
import {readUsersFile, type UsersFileProblem} from '../../lib/config/users-file.js'

export interface UserListItem {
  name: string
  groups: string[]
  isLocked: boolean
  hasPassword: boolean
  /** md5-crypt, sha256-crypt, sha512-crypt, a scheme checked through the system crypt(3) (yescrypt, bcrypt, …), or unknown. */
  hashScheme: string | null
  line: number
}

export interface UserListResult {
  file: string
  users: UserListItem[]
  problems: UsersFileProblem[]
}

export default class UserList extends BaseCommand {
  static override description = `Lists every user in the users file with their groups, whether \
they are locked and which password hash they have. Lines anygate cannot use (malformed lines, \
duplicate names, hashes it cannot check) are listed as problems with their line numbers; they \
stay in the file untouched.`

  static override enableJsonFlag = true

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --users /etc/ocserv/ocpasswd --json',
  ]

  static override flags = {
    users: usersFlag,
  }

  static override summary = 'List the users in the users file.'

  async run(): Promise<UserListResult> {
    const {flags} = await this.parse(UserList)
    const file = resolveUsersFile(flags.users)
    const parsed = readUsersFile(file)

    const users = parsed.users().map((u) => {
      const described = u.hash === '' ? undefined : describeHash(u.hash)
      const hashScheme = !described
        ? null
        : 'scheme' in described
          ? described.scheme
          : described.unsupported
      return {
        name: u.name,
        groups: u.groups,
        isLocked: u.isLocked,
        hasPassword: u.hash !== '',
        hashScheme,
        line: u.line,
      }
    })
    const result = {file, users, problems: parsed.problems()}

    this.printTable(result)
    return result
  }

  private printTable({file, users, problems}: UserListResult): void {
    if (users.length === 0) this.log(`no users in ${file}`)
    const rows = users.map((u) => [
      u.name,
      u.groups.join(',') || '-',
      status(u),
      u.hashScheme ?? '-',
    ])
    const header = ['NAME', 'GROUPS', 'STATUS', 'HASH']
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
    const line = (cells: string[]) =>
      cells
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd()

    if (users.length > 0) this.log(chalk.bold(line(header)))
    for (const r of rows) this.log(line(r))
    for (const p of problems)
      // process.stderr: oclif's logToStderr is silent under --json, and a script must see these
      process.stderr.write(chalk.yellow(`warning: ${file} line ${p.line}: ${p.reason}`) + '\n')
  }
}

function status(u: UserListItem): string {
  if (u.isLocked) return 'locked'
  return u.hasPassword ? 'active' : 'no password'
}
