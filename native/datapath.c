/*
 * The DTLS data path's fast path for anygate: AES-GCM record protection on OpenSSL's EVP AEAD
 * and batched sends with sendmmsg. An N-API addon in plain C, built as its own target
 * (build/Release/datapath.node) so the TUN addon does not depend on libcrypto.
 *
 * Flow (outbound): JS hands sealBatch() the TUN frames of one read, each with its IP packet
 * after `headroom` bytes. For each frame the record header (13 bytes), explicit nonce (8) and
 * AnyConnect type (1) are written into the end of the headroom, the type byte and packet are
 * encrypted in place, and the 16-byte tag goes into a scratch slot here; one mmsghdr per frame
 * gathers [header..packet] and [tag] into one datagram, and sendmmsg sends the lot on the UDP
 * socket's fd. Inbound, open() decrypts one record's fragment in place.
 *
 * State: an aead external owns one EVP_CIPHER_CTX keyed once; each record re-initialises it
 * with its nonce only. Sequence numbers and epochs are owned by JS (DtlsChannel): sealBatch
 * takes the first sequence number and uses first + i for frame i. Record framing follows
 * RFC 6347 §4.1 and RFC 5288 (nonce = 4-byte salt ‖ 8-byte explicit epoch‖seq, AAD =
 * epoch‖seq ‖ type ‖ version ‖ plaintext length). Nothing here runs off the main thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <node_api.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RECORD_HEADER_LEN 13
#define EXPLICIT_NONCE_LEN 8
#define SALT_LEN 4
#define NONCE_LEN (SALT_LEN + EXPLICIT_NONCE_LEN)
#define TAG_LEN 16
#define AAD_LEN 13
/* Header, explicit nonce and the AnyConnect type byte, in front of the IP packet. */
#define SEAL_HEAD_LEN (RECORD_HEADER_LEN + EXPLICIT_NONCE_LEN + 1)
#define MAX_FRAGMENT 16384
#define BATCH 64

#define OPEN_TOO_SHORT -1
#define OPEN_BAD_MAC -2

#define NAPI_CALL(env, call)                                                                      \
  do {                                                                                            \
    if ((call) != napi_ok) {                                                                      \
      throw_last_napi_error(env, #call);                                                          \
      return NULL;                                                                                \
    }                                                                                             \
  } while (0)

typedef struct {
  EVP_CIPHER_CTX *ctx;
  uint8_t salt[SALT_LEN];
  bool is_seal;
} aead_t;

static void throw_last_napi_error(napi_env env, const char *call) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;

  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  char msg[256];
  snprintf(msg, sizeof msg, "%s failed: %s", call,
           info && info->error_message ? info->error_message : "unknown n-api error");
  napi_throw_error(env, NULL, msg);
}

static void aead_finalize(napi_env env, void *data, void *hint) {
  aead_t *a = data;
  EVP_CIPHER_CTX_free(a->ctx);
  free(a);
}

static aead_t *get_aead(napi_env env, napi_value value) {
  aead_t *a = NULL;
  if (napi_get_value_external(env, value, (void **)&a) != napi_ok || a == NULL) {
    napi_throw_type_error(env, NULL, "expected an aead handle");
    return NULL;
  }
  return a;
}

static bool get_u32(napi_env env, napi_value v, const char *name, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) == napi_ok) return true;
  char msg[64];
  snprintf(msg, sizeof msg, "%s must be a number", name);
  napi_throw_type_error(env, NULL, msg);
  return false;
}

/* Sequence numbers are 48-bit: JS numbers, exact below 2^53. */
static bool get_seq(napi_env env, napi_value v, uint64_t *out) {
  int64_t n;
  if (napi_get_value_int64(env, v, &n) != napi_ok || n < 0 || n > 0xffffffffffffLL) {
    napi_throw_range_error(env, NULL, "seq must be an integer in 0..2^48-1");
    return false;
  }
  *out = (uint64_t)n;
  return true;
}

static void put_u16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put_u48(uint8_t *p, uint64_t v) {
  for (int i = 5; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

/* aeadNew(key: Buffer(16|32), salt: Buffer(4), isSeal: boolean) -> handle */
static napi_value aead_new(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "aeadNew needs a key, a salt and a direction");
    return NULL;
  }

  uint8_t *key, *salt;
  size_t key_len, salt_len;
  bool is_seal;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[0], (void **)&key, &key_len));
  NAPI_CALL(env, napi_get_buffer_info(env, argv[1], (void **)&salt, &salt_len));
  NAPI_CALL(env, napi_get_value_bool(env, argv[2], &is_seal));
  const EVP_CIPHER *cipher = key_len == 16 ? EVP_aes_128_gcm() : key_len == 32 ? EVP_aes_256_gcm()
                                                                               : NULL;
  if (cipher == NULL || salt_len != SALT_LEN) {
    napi_throw_range_error(env, NULL, "aeadNew needs a 16- or 32-byte key and a 4-byte salt");
    return NULL;
  }

  aead_t *a = calloc(1, sizeof *a);
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  bool ok = a != NULL && ctx != NULL &&
            EVP_CipherInit_ex(ctx, cipher, NULL, NULL, NULL, is_seal) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
            EVP_CipherInit_ex(ctx, NULL, NULL, key, NULL, is_seal) == 1;
  if (!ok) {
    EVP_CIPHER_CTX_free(ctx);
    free(a);
    napi_throw_error(env, NULL, "cannot set up the aes-gcm context");
    return NULL;
  }
  a->ctx = ctx;
  a->is_seal = is_seal;
  memcpy(a->salt, salt, SALT_LEN);

  napi_value handle;
  if (napi_create_external(env, a, aead_finalize, NULL, &handle) != napi_ok) {
    aead_finalize(env, a, NULL);
    throw_last_napi_error(env, "napi_create_external");
    return NULL;
  }
  return handle;
}

/*
 * Seals one record. `rec` points at RECORD_HEADER_LEN + EXPLICIT_NONCE_LEN bytes of room,
 * then `len` plaintext bytes, which are encrypted in place; the tag goes to `tag`.
 */
static bool seal_record(aead_t *a, uint8_t *rec, size_t len, uint8_t type, uint32_t version,
                        uint32_t epoch, uint64_t seq, uint8_t *tag) {
  uint8_t *explicit_nonce = rec + RECORD_HEADER_LEN;
  uint8_t *pt = explicit_nonce + EXPLICIT_NONCE_LEN;
  rec[0] = type;
  put_u16(rec + 1, version);
  put_u16(rec + 3, epoch);
  put_u48(rec + 5, seq);
  put_u16(rec + 11, (uint32_t)(EXPLICIT_NONCE_LEN + len + TAG_LEN));
  put_u16(explicit_nonce, epoch);
  put_u48(explicit_nonce + 2, seq);

  uint8_t nonce[NONCE_LEN], aad[AAD_LEN];
  memcpy(nonce, a->salt, SALT_LEN);
  memcpy(nonce + SALT_LEN, explicit_nonce, EXPLICIT_NONCE_LEN);
  memcpy(aad, explicit_nonce, EXPLICIT_NONCE_LEN);
  aad[8] = type;
  put_u16(aad + 9, version);
  put_u16(aad + 11, (uint32_t)len);

  int outl;
  return EVP_EncryptInit_ex(a->ctx, NULL, NULL, NULL, nonce) == 1 &&
         EVP_EncryptUpdate(a->ctx, NULL, &outl, aad, AAD_LEN) == 1 &&
         EVP_EncryptUpdate(a->ctx, pt, &outl, pt, (int)len) == 1 &&
         EVP_EncryptFinal_ex(a->ctx, pt + outl, &outl) == 1 &&
         EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
}

/*
 * seal(aead, buf, type, version, epoch, seq) -> undefined
 * `buf` is [21 bytes of room][plaintext][16 bytes of room]; it becomes one whole record.
 * For tests and one-off records; the data path uses sealBatch.
 */
static napi_value aead_seal(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, NULL, "seal needs 6 arguments");
    return NULL;
  }

  aead_t *a = get_aead(env, argv[0]);
  if (a == NULL) return NULL;
  uint8_t *buf;
  size_t buf_len;
  uint32_t type, version, epoch;
  uint64_t seq;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[1], (void **)&buf, &buf_len));
  if (!get_u32(env, argv[2], "type", &type) || !get_u32(env, argv[3], "version", &version) ||
      !get_u32(env, argv[4], "epoch", &epoch) || !get_seq(env, argv[5], &seq)) {
    return NULL;
  }
  size_t room = RECORD_HEADER_LEN + EXPLICIT_NONCE_LEN + TAG_LEN;
  if (!a->is_seal || buf_len < room || buf_len - room > MAX_FRAGMENT) {
    napi_throw_range_error(env, NULL, "seal needs a sealing handle and 37 to 37+16384 bytes");
    return NULL;
  }

  size_t len = buf_len - room;
  uint8_t *tag = buf + buf_len - TAG_LEN;
  if (!seal_record(a, buf, len, (uint8_t)type, version, epoch, seq, tag)) {
    napi_throw_error(env, NULL, "aes-gcm seal failed");
  }
  return NULL;
}

/*
 * open(aead, fragment, type, version, epoch, seq) -> plaintext length, or -1 (too short) /
 * -2 (bad tag). Decrypts in place: the plaintext is fragment[8, 8 + length). On a bad tag the
 * fragment's bytes are garbage afterwards. Never throws on peer input.
 */
static napi_value aead_open(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, NULL, "open needs 6 arguments");
    return NULL;
  }

  aead_t *a = get_aead(env, argv[0]);
  if (a == NULL) return NULL;
  uint8_t *frag;
  size_t frag_len;
  uint32_t type, version, epoch;
  uint64_t seq;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[1], (void **)&frag, &frag_len));
  if (!get_u32(env, argv[2], "type", &type) || !get_u32(env, argv[3], "version", &version) ||
      !get_u32(env, argv[4], "epoch", &epoch) || !get_seq(env, argv[5], &seq)) {
    return NULL;
  }
  if (a->is_seal) {
    napi_throw_type_error(env, NULL, "open needs an opening handle");
    return NULL;
  }

  int32_t result = OPEN_TOO_SHORT;
  if (frag_len >= EXPLICIT_NONCE_LEN + TAG_LEN && frag_len <= MAX_FRAGMENT + 2048) {
    size_t len = frag_len - EXPLICIT_NONCE_LEN - TAG_LEN;
    uint8_t *ct = frag + EXPLICIT_NONCE_LEN;
    uint8_t nonce[NONCE_LEN], aad[AAD_LEN];
    memcpy(nonce, a->salt, SALT_LEN);
    memcpy(nonce + SALT_LEN, frag, EXPLICIT_NONCE_LEN);
    put_u16(aad, epoch);
    put_u48(aad + 2, seq);
    aad[8] = (uint8_t)type;
    put_u16(aad + 9, version);
    put_u16(aad + 11, (uint32_t)len);

    int outl, finl;
    bool ok = EVP_DecryptInit_ex(a->ctx, NULL, NULL, NULL, nonce) == 1 &&
              EVP_DecryptUpdate(a->ctx, NULL, &outl, aad, AAD_LEN) == 1 &&
              EVP_DecryptUpdate(a->ctx, ct, &outl, ct, (int)len) == 1 &&
              EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, ct + len) == 1 &&
              EVP_DecryptFinal_ex(a->ctx, ct + outl, &finl) == 1;
    result = ok ? (int32_t)len : OPEN_BAD_MAC;
  }

  napi_value out;
  NAPI_CALL(env, napi_create_int32(env, result, &out));
  return out;
}

/* sockaddr(address: string, port: number) -> Buffer holding a sockaddr_in or sockaddr_in6 */
static napi_value make_sockaddr(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char text[INET6_ADDRSTRLEN + 16];
  size_t text_len;
  uint32_t port;
  if (argc < 2 ||
      napi_get_value_string_utf8(env, argv[0], text, sizeof text, &text_len) != napi_ok ||
      !get_u32(env, argv[1], "port", &port) || port > 65535) {
    napi_throw_type_error(env, NULL, "sockaddr needs an address string and a port");
    return NULL;
  }
  char *scope = strchr(text, '%');
  if (scope) *scope = '\0';

  struct sockaddr_in v4;
  struct sockaddr_in6 v6;
  memset(&v4, 0, sizeof v4);
  memset(&v6, 0, sizeof v6);
  void *sa = NULL;
  size_t sa_len = 0;
  if (inet_pton(AF_INET, text, &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons((uint16_t)port);
    sa = &v4;
    sa_len = sizeof v4;
  } else if (inet_pton(AF_INET6, text, &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons((uint16_t)port);
    sa = &v6;
    sa_len = sizeof v6;
  } else {
    napi_throw_type_error(env, NULL, "sockaddr: not an IP address");
    return NULL;
  }

  napi_value out;
  NAPI_CALL(env, napi_create_buffer_copy(env, sa_len, sa, NULL, &out));
  return out;
}

/* Sends `count` prepared messages; returns how many went, or -errno if none did. */
static int send_all(int fd, struct mmsghdr *msgs, unsigned count) {
  unsigned sent = 0;
  while (sent < count) {
    int n = sendmmsg(fd, msgs + sent, count - sent, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sent > 0 ? (int)sent : -errno;
    sent += (unsigned)n;
  }
  return (int)sent;
}

/*
 * sealBatch(aead, fd, sockaddr, frames: Buffer[], headroom, version, epoch, firstSeq,
 *           contentType, acType) -> datagrams sent, or -errno when the first send failed
 *
 * Every frame is [headroom][IP packet]; frame i is sealed with sequence number firstSeq + i,
 * whether or not it is sent (the caller advances its sequence by frames.length). A send that
 * stops early (EAGAIN: the socket buffer is full) leaves the rest unsent: UDP drops them.
 */
static napi_value aead_seal_batch(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 10) {
    napi_throw_type_error(env, NULL, "sealBatch needs 10 arguments");
    return NULL;
  }

  aead_t *a = get_aead(env, argv[0]);
  if (a == NULL) return NULL;
  int32_t fd;
  void *sa;
  size_t sa_len;
  uint32_t count, headroom, version, epoch, content_type, ac_type;
  uint64_t seq;
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &fd));
  NAPI_CALL(env, napi_get_buffer_info(env, argv[2], &sa, &sa_len));
  NAPI_CALL(env, napi_get_array_length(env, argv[3], &count));
  if (!get_u32(env, argv[4], "headroom", &headroom) ||
      !get_u32(env, argv[5], "version", &version) || !get_u32(env, argv[6], "epoch", &epoch) ||
      !get_seq(env, argv[7], &seq) || !get_u32(env, argv[8], "contentType", &content_type) ||
      !get_u32(env, argv[9], "acType", &ac_type)) {
    return NULL;
  }
  if (!a->is_seal || headroom < SEAL_HEAD_LEN || fd < 0 ||
      (sa_len != sizeof(struct sockaddr_in) && sa_len != sizeof(struct sockaddr_in6))) {
    napi_throw_range_error(env, NULL, "sealBatch needs a sealing handle, a socket and 22+ headroom");
    return NULL;
  }

  uint8_t tags[BATCH][TAG_LEN];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH][2];
  int total = 0;
  for (uint32_t done = 0; done < count;) {
    /* Seal up to BATCH frames in place */
    unsigned n = 0;
    for (; n < BATCH && done < count; n++, done++, seq++) {
      napi_value el;
      uint8_t *frame;
      size_t frame_len;
      NAPI_CALL(env, napi_get_element(env, argv[3], done, &el));
      NAPI_CALL(env, napi_get_buffer_info(env, el, (void **)&frame, &frame_len));
      if (frame_len < headroom || frame_len - headroom + 1 > MAX_FRAGMENT) {
        napi_throw_range_error(env, NULL, "sealBatch: a frame is shorter than its headroom or too long");
        return NULL;
      }

      uint8_t *rec = frame + headroom - SEAL_HEAD_LEN;
      size_t len = frame_len - headroom + 1;
      frame[headroom - 1] = (uint8_t)ac_type;
      if (!seal_record(a, rec, len, (uint8_t)content_type, version, epoch, seq, tags[n])) {
        napi_throw_error(env, NULL, "aes-gcm seal failed");
        return NULL;
      }

      iov[n][0].iov_base = rec;
      iov[n][0].iov_len = frame_len - headroom + SEAL_HEAD_LEN;
      iov[n][1].iov_base = tags[n];
      iov[n][1].iov_len = TAG_LEN;
      memset(&msgs[n], 0, sizeof msgs[n]);
      msgs[n].msg_hdr.msg_name = sa;
      msgs[n].msg_hdr.msg_namelen = (socklen_t)sa_len;
      msgs[n].msg_hdr.msg_iov = iov[n];
      msgs[n].msg_hdr.msg_iovlen = 2;
    }

    /* One sendmmsg for the chunk; stop at the first refusal */
    int sent = send_all(fd, msgs, n);
    if (sent < 0 && total == 0) total = sent;
    if (sent < 0) break;
    total += sent;
    if ((unsigned)sent < n) break;
  }

  napi_value out;
  NAPI_CALL(env, napi_create_int32(env, total, &out));
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"aeadNew", NULL, aead_new, NULL, NULL, NULL, napi_enumerable, NULL},
      {"seal", NULL, aead_seal, NULL, NULL, NULL, napi_enumerable, NULL},
      {"open", NULL, aead_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sealBatch", NULL, aead_seal_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sockaddr", NULL, make_sockaddr, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) {
    return NULL;
  }
  return exports;
}
