// Writes man/anygate-<topic>-<command>.1 for every anygate command, from the same oclif
// metadata that --help prints, so the pages and the flags cannot drift apart. Run after
// `npm run build:ts` (it reads dist/ through oclif.manifest.json).
import {Config} from '@oclif/core'
import fs from 'node:fs'

const root = new URL('..', import.meta.url).pathname
const config = await Config.load(root)
const roff = (s = '') =>
  String(s).replace(/\\/g, '\\e').replace(/-/g, '\\-').replace(/^([.'])/gm, '\\&$1')
    .replace(/[^\x00-\x7f]/g, (c) => `\\[u${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}]`)
const fill = (s) => s.replace(/<%= config.bin %>/g, config.bin)

const own = config.commands.filter((c) => c.pluginName === config.name && !c.hidden)
fs.mkdirSync(`${root}man`, {recursive: true})
const written = []

for (const cmd of own) {
  const words = cmd.id.split(':')
  const page = [config.bin, ...words].join('-')
  const flags = Object.entries(cmd.flags ?? {}).filter(([, f]) => !f.hidden)
  const args = Object.entries(cmd.args ?? {})
  const lines = [
    `.TH ${page.toUpperCase()} 1 "" "${config.name} ${config.version}" "anygate manual"`,
    '.SH NAME',
    `${roff(page)} \\- ${roff(cmd.summary ?? (cmd.description ?? '').split('\n')[0])}`,
    '.SH SYNOPSIS',
    `.B ${config.bin} ${words.join(' ')}`,
    ...args.map(([n, a]) => (a.required ? `.I ${n.toUpperCase()}` : `.RI [ ${n.toUpperCase()} ]`)),
    '[\\fIOPTIONS\\fR]',
    '.SH DESCRIPTION',
    ...roff(fill(cmd.description ?? cmd.summary ?? '')).split(/\n\n+/).flatMap((p) => ['.PP', p]),
  ]

  if (flags.length > 0) {
    lines.push('.SH OPTIONS')
    for (const [name, f] of flags.sort(([a], [b]) => a.localeCompare(b))) {
      const short = f.char ? `\\fB\\-${f.char}\\fR, ` : ''
      const value = f.type === 'option' ? ' \\fIVALUE\\fR' : ''
      const extra = [
        f.multiple ? 'May be repeated.' : '',
        f.options ? `One of: ${f.options.join(', ')}.` : '',
        f.default !== undefined && f.default !== false ? `Default: ${JSON.stringify(f.default)}.` : '',
      ].filter(Boolean)
      lines.push('.TP', `${short}\\fB\\-\\-${roff(name)}\\fR${value}`, roff([f.description ?? '', ...extra].join(' ')))
    }
  }

  const examples = (cmd.examples ?? []).map((e) => fill(typeof e === 'string' ? e : e.command))
  if (examples.length > 0) lines.push('.SH EXAMPLES', ...examples.flatMap((e) => ['.PP', '.nf', roff(e), '.fi']))
  lines.push('.SH SEE ALSO', '.BR anygate (1)')
  fs.writeFileSync(`${root}man/${page}.1`, lines.join('\n') + '\n')
  written.push(`man/${page}.1`)
}

// The overview page: every command with its summary.
const overview = [
  `.TH ANYGATE 1 "" "${config.name} ${config.version}" "anygate manual"`,
  '.SH NAME',
  `anygate \\- ${roff(config.pjson.description ?? '')}`,
  '.SH SYNOPSIS',
  '.B anygate',
  '.I COMMAND',
  '[\\fIOPTIONS\\fR]',
  '.SH COMMANDS',
  ...own
    .sort((a, b) => a.id.localeCompare(b.id))
    .flatMap((c) => ['.TP', `\\fB${c.id.split(':').join(' ')}\\fR`, roff(c.summary ?? '')]),
  '.SH FILES',
  '.TP',
  '/var/lib/anygate',
  'The state directory: CA and server certificate, users file (override with ANYGATE_STATE_DIR).',
  '.SH SEE ALSO',
  ...own.map((c) => `.BR ${[config.bin, ...c.id.split(':')].join('-')} (1)`),
]
fs.writeFileSync(`${root}man/anygate.1`, overview.join('\n') + '\n')
written.push('man/anygate.1')

console.log(`wrote ${written.length} pages`)
