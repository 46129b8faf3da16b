/**
 * Cookie header parsing. Values are kept byte for byte: the webvpn cookie is base64 with `+`,
 * `/` and `=`, which must not be URL-decoded (auth-and-cstp.md §2.11).
 */

/** Returns the value of cookie `name` from a Cookie header, or undefined. */
export function getCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() !== name) continue
    return part.slice(eq + 1).trim()
  }

  return undefined
}

export function setCookie(name: string, value: string, attrs = 'Secure; HttpOnly'): string {
  return `${name}=${value}; ${attrs}`
}
