/*
 * The system's crypt(3) for anygate's users file: libxcrypt's crypt_rn, the function ocserv's
 * plain auth hands stored hashes to. With it anygate checks every scheme ocserv checks on the
 * same machine (yescrypt, gost-yescrypt, scrypt, bcrypt, SHA-1 crypt, Sun MD5, BSDi and
 * traditional DES), not only the SHA-crypt and MD5-crypt ones it computes itself.
 *
 * One call: hash(password, setting) returns the full hash string, or null when libxcrypt
 * refuses the setting (an unknown or disabled scheme, a malformed salt). The work area is on
 * the heap (it is ~32 KiB) and wiped before it is freed, since it held the password. Callers
 * run this in a worker thread: yescrypt at Debian's default cost takes tens of milliseconds.
 */
#include <crypt.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

/* The longest password accepted, as the JS side's MAX_PASSWORD_BYTES. */
#define MAX_PASSWORD_BYTES 1024
/* crypt settings are short; libxcrypt's own limit is CRYPT_OUTPUT_SIZE (384). */
#define MAX_SETTING_BYTES CRYPT_OUTPUT_SIZE

static napi_value throw_error(napi_env env, const char *code, const char *message) {
  napi_throw_error(env, code, message);
  return NULL;
}

/* Copies a string argument into `out` (NUL-terminated); false and a pending throw if it does not fit. */
static int read_string(napi_env env, napi_value value, char *out, size_t cap, const char *what) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) {
    throw_error(env, "CRYPT_BAD_ARGUMENT", what);
    return 0;
  }
  if (len >= cap) {
    throw_error(env, "CRYPT_TOO_LONG", what);
    return 0;
  }
  napi_get_value_string_utf8(env, value, out, cap, &len);
  /* A NUL inside would silently shorten what crypt sees: refuse it. */
  if (strlen(out) != len) {
    throw_error(env, "CRYPT_BAD_ARGUMENT", what);
    return 0;
  }
  return 1;
}

static napi_value crypt_hash(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2) {
    return throw_error(env, "CRYPT_BAD_ARGUMENT", "hash(password, setting) takes two strings");
  }

  char password[MAX_PASSWORD_BYTES + 1];
  char setting[MAX_SETTING_BYTES];
  if (!read_string(env, argv[0], password, sizeof password, "password must be a string of at most 1024 bytes")) {
    return NULL;
  }
  if (!read_string(env, argv[1], setting, sizeof setting, "setting must be a short string")) {
    explicit_bzero(password, sizeof password);
    return NULL;
  }

  struct crypt_data *data = calloc(1, sizeof *data);
  if (!data) {
    explicit_bzero(password, sizeof password);
    return throw_error(env, "CRYPT_NO_MEMORY", "out of memory");
  }

  const char *hashed = crypt_rn(password, setting, data, sizeof *data);
  napi_value out;
  napi_status status = hashed ? napi_create_string_utf8(env, hashed, NAPI_AUTO_LENGTH, &out) : napi_get_null(env, &out);

  explicit_bzero(data, sizeof *data);
  free(data);
  explicit_bzero(password, sizeof password);
  if (status != napi_ok) return throw_error(env, "CRYPT_FAILED", "could not return the hash");
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"hash", NULL, crypt_hash, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) {
    return NULL;
  }
  return exports;
}
