/**
 * The one place that loads `@peculiar/x509`: v2 needs `reflect-metadata` imported first, and its
 * WebCrypto provider set to Node's.
 */
import 'reflect-metadata'

import {webcrypto} from 'node:crypto'

import * as x509 from '@peculiar/x509'

x509.cryptoProvider.set(webcrypto as unknown as Crypto)

export {x509}
export const subtle = webcrypto.subtle as unknown as SubtleCrypto
