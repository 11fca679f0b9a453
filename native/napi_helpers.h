// N-API helpers shared by the project's addons: errors carrying errno, and small
// conversions. Header-only (static inline): each addon is its own shared object.
#ifndef HOTPLUGD_NAPI_HELPERS_H
#define HOTPLUGD_NAPI_HELPERS_H

#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

// A failed N-API call is a bug of ours: an exception, not a crash.
#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, "EINTERNAL", "N-API call failed: " #call); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

// Throws an Error "what: strerror(err)" with `code` (EWOULDBLOCK for a lock held
// elsewhere, else ESYSCALL) and `errno`; returns NULL for the caller to return.
static inline napi_value throw_errno(napi_env env, const char *what, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_value code, msg, error, errno_value;
  napi_create_string_utf8(env, err == EWOULDBLOCK ? "EWOULDBLOCK" : "ESYSCALL", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_throw(env, error);
  return NULL;
}

static inline int get_int(napi_env env, napi_value value, int32_t *out) {
  return napi_get_value_int32(env, value, out) == napi_ok;
}

// True when the string fits in `out` (with its NUL) and was read whole.
static inline int get_string(napi_env env, napi_value value, char *out, size_t size) {
  size_t length = 0;
  return napi_get_value_string_utf8(env, value, out, size, &length) == napi_ok && length < size - 1;
}

// The one int32 argument of a call; else a TypeError saying `usage`, and 0.
static inline int int_argument(napi_env env, napi_callback_info info, int32_t *out, const char *usage) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 1 && get_int(env, argv[0], out)) return 1;
  napi_throw_type_error(env, NULL, usage);
  return 0;
}

// The one path argument of a call, whole in `out`; else a TypeError saying `usage`, and 0.
static inline int path_argument(napi_env env, napi_callback_info info, char *out, size_t size, const char *usage) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 1 && get_string(env, argv[0], out, size)) return 1;
  napi_throw_type_error(env, NULL, usage);
  return 0;
}

static inline void set_int(napi_env env, napi_value object, const char *name, int64_t value) {
  napi_value v;
  napi_create_int64(env, value, &v);
  napi_set_named_property(env, object, name, v);
}

// Queues `execute` on a thread of libuv's pool, `complete` after it on the loop, and returns a
// promise for `complete` to settle through *deferred (`work` for it to delete). NULL on failure.
static inline napi_value queue_promised_work(napi_env env, const char *name, napi_async_execute_callback execute, napi_async_complete_callback complete,
                                             void *data, napi_deferred *deferred, napi_async_work *work) {
  napi_value promise, resource;
  CHECK(napi_create_promise(env, deferred, &promise));
  CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource));
  CHECK(napi_create_async_work(env, NULL, resource, execute, complete, data, work));
  CHECK(napi_queue_async_work(env, *work));
  return promise;
}

#endif
