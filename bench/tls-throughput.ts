/**
 * Tunnel throughput over TLS only (openconnect --no-dtls), ocserv against anygate (see lib/throughput.ts).
 *
 *   node --import tsx bench/tls-throughput.ts [--seconds N] [--runs N] [--only ocserv|anygate]
 */
import {runThroughputBench} from './lib/throughput.js'

process.exitCode = await runThroughputBench('tls')
