// hotplugd's one native addon: netlink sockets and their poll watcher (uevent_socket.c), the
// system calls Node.js lacks (system_calls.c), sysfs attribute reads (attributes.c) and
// kernel module insertion (kernel_modules.c) and batched broadcasts (broadcast_batch.c), loaded by src/os/native.ts through
// node-gyp-build: from prebuilds/<platform>-<arch>/ in the package, or built from source.
#include "napi_helpers.h"

napi_value uevent_socket_init(napi_env env, napi_value exports);
napi_value system_calls_init(napi_env env, napi_value exports);
napi_value attributes_init(napi_env env, napi_value exports);
napi_value kernel_modules_init(napi_env env, napi_value exports);
napi_value broadcast_batch_init(napi_env env, napi_value exports);

static napi_value init(napi_env env, napi_value exports) {
  if (uevent_socket_init(env, exports) == NULL || system_calls_init(env, exports) == NULL) return NULL;
  if (attributes_init(env, exports) == NULL) return NULL;
  if (kernel_modules_init(env, exports) == NULL) return NULL;
  return broadcast_batch_init(env, exports);
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
