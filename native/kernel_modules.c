// Kernel modules inserted in process, as udevd's kmod builtin does (libkmod): open the
// module's file and finit_module(2) it with its options, on a thread of libuv's pool, since a
// module's init (a driver probing its devices) can take long and must not stall the loop.
// Which modules, in which order and with which options is decided in src/os/kmod-loader.ts.
#include "napi_helpers.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char path[4096];
  char *params;
  int flags;
  int err;
} Insert;

static void insert_execute(napi_env env, void *data) {
  (void)env;
  Insert *insert = data;
  int fd = open(insert->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    insert->err = errno;
    return;
  }
  insert->err = syscall(SYS_finit_module, fd, insert->params, insert->flags) == 0 ? 0 : errno;
  close(fd);
}

static void insert_complete(napi_env env, napi_status status, void *data) {
  Insert *insert = data;
  napi_value result;
  napi_create_int32(env, status == napi_ok ? -insert->err : -ECANCELED, &result);
  napi_resolve_deferred(env, insert->deferred, result);
  napi_delete_async_work(env, insert->work);
  free(insert->params);
  free(insert);
}

// insertModule(path, params, flags) -> Promise<0 | -errno>: EEXIST when it is loaded already.
// flags: MODULE_INIT_COMPRESSED_FILE (4) for a compressed file the kernel decompresses itself.
static napi_value insert_module(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Insert *insert = calloc(1, sizeof *insert);
  size_t length = 0;
  if (insert == NULL) return throw_errno(env, "insertModule", ENOMEM);
  if (argc < 3 || !get_string(env, argv[0], insert->path, sizeof insert->path) || !get_int(env, argv[2], &insert->flags) ||
      napi_get_value_string_utf8(env, argv[1], NULL, 0, &length) != napi_ok || (insert->params = malloc(length + 1)) == NULL ||
      napi_get_value_string_utf8(env, argv[1], insert->params, length + 1, &length) != napi_ok) {
    free(insert->params);
    free(insert);
    napi_throw_type_error(env, NULL, "insertModule(path, params, flags) expects a path, a string and flags");
    return NULL;
  }
  return queue_promised_work(env, "hotplugd.insertModule", insert_execute, insert_complete, insert, &insert->deferred, &insert->work);
}

napi_value kernel_modules_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"insertModule", NULL, insert_module, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
