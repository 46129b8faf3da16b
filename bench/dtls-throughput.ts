/**
 * Tunnel throughput over DTLS (PSK-NEGOTIATE, PSK-AES-256-GCM), ocserv against anygate (see lib/throughput.ts).
 *
 *   node --import tsx bench/dtls-throughput.ts [--seconds N] [--runs N] [--only ocserv|anygate]
 */
import {runThroughputBench} from './lib/throughput.js'

process.exitCode = await runThroughputBench('dtls')
