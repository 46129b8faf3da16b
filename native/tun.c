/*
 * Linux TUN device for anygate: an N-API addon in plain C (node_api.h + uv.h).
 *
 * Flow: open() creates the interface (TUNSETIFF, IFF_TUN | IFF_NO_PI) on a non-blocking fd and
 * returns an external that owns the fd. watch() starts a uv_poll on the main loop; when the fd
 * turns readable it calls back into JS, which drains the kernel queue with readBatch() into an
 * arena that JS owns, each packet placed `headroom` bytes after the previous one ends. write()
 * hands one packet to the kernel. close() stops and closes the poll handle, then closes the fd.
 * Nothing here runs on the libuv thread pool.
 *
 * Addresses, MTU and routes are set from JS through iproute2 (src/lib/tun/ip.ts), not here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <uv.h>

#define TUN_CLONE_PATH "/dev/net/tun"
#define ASYNC_RESOURCE_NAME "anygate.tun"

/* Returns NULL from the calling function when an N-API call fails; N-API has set the error. */
#define NAPI_CALL(env, call)                                                                      \
  do {                                                                                            \
    if ((call) != napi_ok) {                                                                      \
      throw_last_napi_error(env, #call);                                                          \
      return NULL;                                                                                \
    }                                                                                             \
  } while (0)

typedef enum { POLL_NONE, POLL_ACTIVE, POLL_CLOSING, POLL_CLOSED } poll_state_t;

/*
 * One open TUN device. JS holds it through an external; the uv_poll_t lives inside it, so the
 * memory is freed only once both the JS finalizer has run and libuv has finished closing the
 * poll handle.
 */
typedef struct {
  napi_env env;
  int fd;
  uv_poll_t poll;
  poll_state_t poll_state;
  napi_ref on_readable;
  napi_async_context async_context;
  bool finalized;
} tun_t;

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

/* libuv's uv_err_name leaks for codes it does not know (EBADFD), so name the ones we meet. */
static const char *errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case ENODEV: return "ENODEV";
    case ENXIO: return "ENXIO";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case EBADFD: return "EBADFD";
    case EIO: return "EIO";
    case EFAULT: return "EFAULT";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case ENOBUFS: return "ENOBUFS";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EMSGSIZE: return "EMSGSIZE";
    default: return "EUNKNOWN";
  }
}

/* Throws an Error shaped like Node's system errors: message, code, errno (negative), syscall. */
static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));

  napi_value message, code, error, errno_value, syscall_value;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok) return NULL;
  const char *name = errno_name(err);
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok) return NULL;
  if (napi_create_error(env, code, message, &error) != napi_ok) return NULL;

  napi_create_int32(env, -err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  napi_throw(env, error);
  return NULL;
}

static void on_poll_closed(uv_handle_t *handle) {
  tun_t *tun = handle->data;
  tun->poll_state = POLL_CLOSED;
  if (tun->finalized) free(tun);
}

/* Stops polling, then closes the fd, in that order: the fd must outlive the poll handle's use. */
static void tun_shutdown(tun_t *tun) {
  if (tun->poll_state == POLL_ACTIVE) {
    uv_poll_stop(&tun->poll);
    uv_close((uv_handle_t *)&tun->poll, on_poll_closed);
    tun->poll_state = POLL_CLOSING;
  }
  if (tun->fd >= 0) {
    close(tun->fd);
    tun->fd = -1;
  }
}

static void tun_release_js(napi_env env, tun_t *tun) {
  if (tun->on_readable) {
    napi_delete_reference(env, tun->on_readable);
    tun->on_readable = NULL;
  }
  if (tun->async_context) {
    napi_async_destroy(env, tun->async_context);
    tun->async_context = NULL;
  }
}

/*
 * A watched device cannot be collected (the callback reference is strong), so this runs for an
 * unwatched or closed device, or at environment teardown.
 */
static void tun_finalize(napi_env env, void *data, void *hint) {
  tun_t *tun = data;
  tun->finalized = true;
  tun_release_js(env, tun);
  tun_shutdown(tun);
  if (tun->poll_state != POLL_CLOSING) free(tun);
}

static tun_t *get_tun(napi_env env, napi_value value) {
  tun_t *tun = NULL;
  if (napi_get_value_external(env, value, (void **)&tun) != napi_ok || tun == NULL) {
    napi_throw_type_error(env, NULL, "expected a tun handle");
    return NULL;
  }
  return tun;
}

static bool get_uint32(napi_env env, napi_value value, const char *what, uint32_t *out) {
  if (napi_get_value_uint32(env, value, out) == napi_ok) return true;
  char msg[128];
  snprintf(msg, sizeof msg, "%s must be a non-negative integer", what);
  napi_throw_type_error(env, NULL, msg);
  return false;
}

/* Copies an optional interface name into ifr_name; undefined or null lets the kernel choose. */
static bool read_ifname(napi_env env, napi_value value, char name[IFNAMSIZ]) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return false;
  if (type == napi_undefined || type == napi_null) return true;
  if (type != napi_string) {
    napi_throw_type_error(env, NULL, "interface name must be a string");
    return false;
  }

  size_t len = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) return false;
  if (len == 0 || len >= IFNAMSIZ) {
    napi_throw_range_error(env, NULL, "interface name must be 1 to 15 bytes");
    return false;
  }
  return napi_get_value_string_utf8(env, value, name, IFNAMSIZ, &len) == napi_ok;
}

/* open(name?: string) -> {handle, name} */
static napi_value tun_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  // Not yet: IFF_MULTI_QUEUE, so one device is read by one thread (the main loop) only.
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (argc >= 1 && !read_ifname(env, argv[0], ifr.ifr_name)) return NULL;

  int fd = open(TUN_CLONE_PATH, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "open", errno);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "ioctl", err);
  }

  tun_t *tun = calloc(1, sizeof *tun);
  if (tun == NULL) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  tun->env = env;
  tun->fd = fd;

  napi_value handle, name, result;
  if (napi_create_external(env, tun, tun_finalize, NULL, &handle) != napi_ok) {
    close(fd);
    free(tun);
    throw_last_napi_error(env, "napi_create_external");
    return NULL;
  }
  NAPI_CALL(env, napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &name));
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_set_named_property(env, result, "handle", handle));
  NAPI_CALL(env, napi_set_named_property(env, result, "name", name));
  return result;
}

/*
 * readBatch(handle, arena, start, headroom, maxPacket, meta, maxCount) -> count
 *
 * Reads packets until EAGAIN, until maxCount, or until the arena has no room for one more
 * [headroom][maxPacket] frame. Frame i starts at meta[2i] and holds meta[2i+1] packet bytes
 * after its headroom; the next frame starts right where it ends. Throws only when the very
 * first read fails; a later failure ends the batch and shows up again on the next call.
 */
static napi_value tun_read_batch(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 7) {
    napi_throw_type_error(env, NULL, "readBatch needs 7 arguments");
    return NULL;
  }

  tun_t *tun = get_tun(env, argv[0]);
  if (tun == NULL) return NULL;
  uint8_t *arena;
  size_t arena_len;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[1], (void **)&arena, &arena_len));
  uint32_t start, headroom, max_packet, max_count;
  if (!get_uint32(env, argv[2], "start", &start)) return NULL;
  if (!get_uint32(env, argv[3], "headroom", &headroom)) return NULL;
  if (!get_uint32(env, argv[4], "maxPacket", &max_packet)) return NULL;
  if (!get_uint32(env, argv[6], "maxCount", &max_count)) return NULL;

  napi_typedarray_type meta_type;
  size_t meta_len;
  void *meta_data;
  NAPI_CALL(env, napi_get_typedarray_info(env, argv[5], &meta_type, &meta_len, &meta_data, NULL,
                                          NULL));
  if (meta_type != napi_int32_array || meta_len < 2 * (size_t)max_count) {
    napi_throw_range_error(env, NULL, "meta must be an Int32Array of 2 * maxCount entries");
    return NULL;
  }
  if (max_packet == 0 || start > arena_len) {
    napi_throw_range_error(env, NULL, "maxPacket must be positive and start inside the arena");
    return NULL;
  }
  if (tun->fd < 0) return throw_errno(env, "read", EBADF);

  int32_t *meta = meta_data;
  size_t frame_len = (size_t)headroom + max_packet;
  size_t pos = start;
  uint32_t count = 0;
  while (count < max_count && arena_len - pos >= frame_len) {
    ssize_t n = read(tun->fd, arena + pos + headroom, max_packet);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && count > 0) break;
    if (n < 0) return throw_errno(env, "read", errno);
    if (n == 0) break;

    meta[2 * count] = (int32_t)pos;
    meta[2 * count + 1] = (int32_t)n;
    count++;
    pos += headroom + (size_t)n;
  }

  napi_value result;
  NAPI_CALL(env, napi_create_uint32(env, count, &result));
  return result;
}

/* write(handle, packet) -> bytes written, or -errno (never throws for a kernel refusal) */
static napi_value tun_write(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "write needs a handle and a packet");
    return NULL;
  }

  tun_t *tun = get_tun(env, argv[0]);
  if (tun == NULL) return NULL;
  void *data;
  size_t len;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[1], &data, &len));

  ssize_t n = -1;
  int err = EBADF;
  if (tun->fd >= 0) {
    do n = write(tun->fd, data, len);
    while (n < 0 && errno == EINTR);
    err = errno;
  }

  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, n < 0 ? -err : (int32_t)n, &result));
  return result;
}

/* Runs on the main loop when the fd is readable or in error; JS drains the queue. */
static void on_poll(uv_poll_t *handle, int status, int events) {
  tun_t *tun = handle->data;
  if (tun->on_readable == NULL) return;

  napi_env env = tun->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;

  napi_value callback, recv, arg, result;
  bool ready = napi_get_reference_value(env, tun->on_readable, &callback) == napi_ok &&
               napi_get_global(env, &recv) == napi_ok &&
               napi_create_int32(env, status, &arg) == napi_ok;
  /* The callback may close the device; nothing below touches `tun` afterwards. */
  napi_status called = ready ? napi_make_callback(env, tun->async_context, recv, callback, 1, &arg,
                                                  &result)
                             : napi_generic_failure;

  /* No JS frame is below a libuv callback: route a throw to 'uncaughtException'. */
  bool pending = false;
  if (called != napi_ok && napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
}

/* watch(handle, onReadable: (status) => void, resource: object) -> undefined */
static napi_value tun_watch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "watch needs a handle, a callback and a resource");
    return NULL;
  }

  tun_t *tun = get_tun(env, argv[0]);
  if (tun == NULL) return NULL;
  if (tun->poll_state != POLL_NONE || tun->fd < 0) {
    napi_throw_error(env, NULL, "tun device is already watched or closed");
    return NULL;
  }

  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  int rc = uv_poll_init(loop, &tun->poll, tun->fd);
  if (rc != 0) return throw_errno(env, "uv_poll_init", -rc);
  tun->poll.data = tun;
  tun->poll_state = POLL_ACTIVE;

  napi_value resource_name;
  bool ok = napi_create_reference(env, argv[1], 1, &tun->on_readable) == napi_ok &&
            napi_create_string_utf8(env, ASYNC_RESOURCE_NAME, NAPI_AUTO_LENGTH, &resource_name) ==
                napi_ok &&
            napi_async_init(env, argv[2], resource_name, &tun->async_context) == napi_ok;
  rc = ok ? uv_poll_start(&tun->poll, UV_READABLE, on_poll) : 0;
  if (ok && rc == 0) return NULL;

  tun_release_js(env, tun);
  uv_close((uv_handle_t *)&tun->poll, on_poll_closed);
  tun->poll_state = POLL_CLOSING;
  if (!ok) {
    throw_last_napi_error(env, "watch");
    return NULL;
  }
  return throw_errno(env, "uv_poll_start", -rc);
}

/* close(handle) -> undefined; idempotent. The kernel removes a non-persistent interface. */
static napi_value tun_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "close needs a handle");
    return NULL;
  }

  tun_t *tun = get_tun(env, argv[0]);
  if (tun == NULL) return NULL;
  tun_release_js(env, tun);
  tun_shutdown(tun);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"open", NULL, tun_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readBatch", NULL, tun_read_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"write", NULL, tun_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watch", NULL, tun_watch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, tun_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) {
    return NULL;
  }
  return exports;
}
