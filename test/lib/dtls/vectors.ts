/**
 * Loads the captured DTLS vectors (dtls-and-datapath.md §12), kept in the repository as
 * test/fixtures/dtls-vectors so a clean checkout runs every vector test, never skips them.
 */
import {readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

export const VECTOR_DIR = fileURLToPath(new URL('../../fixtures/dtls-vectors/', import.meta.url))

export interface VectorRecord {
  content_type: number
  version: string
  epoch: number
  sequence_number: number
  length: number
  plaintext?: string
  explicit_iv?: string
  finished?: {verify_data: string; label: string; message_seq: number}
  anyconnect_type?: number
}

export interface Vector {
  file: string
  mode: string
  negotiated: {version: string; cipher_suite: string}
  client_random: string
  server_random: string
  client_hello_session_id: string
  server_hello_session_id: string
  master_secret: string
  psk?: string
  psk_premaster_secret?: string
  cstp_tls?: {version: string; prf_hash?: string; master_secret?: string; client_random?: string; server_random?: string}
  key_block: string
  keys: Record<string, string>
  datagrams: {direction: string; udp_payload_hex: string; records: VectorRecord[]}[]
}

export function loadVectors(): Vector[] {
  const vectors = readdirSync(VECTOR_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({file, ...JSON.parse(readFileSync(join(VECTOR_DIR, file), 'utf8'))}) as Vector)
    .filter((v) => v.negotiated !== undefined)
  if (vectors.length === 0) throw new Error(`no DTLS vectors in ${VECTOR_DIR}`)
  return vectors
}

export const hex = (s: string) => Buffer.from(s, 'hex')
