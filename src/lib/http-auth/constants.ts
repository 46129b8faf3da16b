/**
 * Names and fixed texts of the aggregate-auth exchange (auth-and-cstp.md §2).
 */

export const WEBVPN_COOKIE = 'webvpn'
export const CONTEXT_COOKIE = 'webvpncontext'
export const CLIENT_CONFIG_COOKIE = 'webvpnc'

export const TUNNEL_PATH = '/CSCOSSLC/tunnel'
/** Clavister's client sends the path without the slash (auth-and-cstp.md §3.1). */
export const TUNNEL_PATH_NO_SLASH = 'CSCOSSLC/tunnel'

/** Paths that serve the login form (GET) and take login posts (POST), as ocserv's. */
export const LOGIN_PATHS = new Set(['/', '/auth', '/VPN'])
export const FORM_ACTION = '/auth'

/** The password tries one login context gets before the answer becomes 401 (ocserv: 3). */
export const MAX_PASSWORD_TRIES = 3

export const EXPIRED_COOKIE_ATTRS = 'expires=Thu, 01 Jan 1970 22:00:00 GMT; path=/; Secure; HttpOnly'

export const MSG_ENTER_CREDENTIALS = 'Please enter your username and password.'
export const MSG_LOGIN_FAILED = 'Login failed.'
export const MSG_SELECT_GROUP_DENIED = 'You are not a member of the selected group.'
export const SERVICE_TITLE = 'SSL VPN Service'
