// A batch of netlink datagrams sent with sendmmsg(2) on a thread of libuv's pool: in a storm
// the broadcast to libudev listeners (delivering to each listener, waking it) costs the
// daemon's one thread as much as evaluating an event's rules. One batch at a time per socket
// (src/udev/broadcaster.ts waits for one to end before the next): datagrams stay in order.
#define _GNU_SOURCE  // sendmmsg
#include "napi_helpers.h"

#include <linux/netlink.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buffer;
  int fd;
  char *data;
  uint32_t count;
  uint32_t *table;  // offset, length, groups per datagram
  int err;
  uint32_t sent;
} Batch;

static void batch_execute(napi_env env, void *data) {
  (void)env;
  Batch *batch = data;
  struct mmsghdr *messages = calloc(batch->count, sizeof *messages);
  struct iovec *vectors = calloc(batch->count, sizeof *vectors);
  struct sockaddr_nl *destinations = calloc(batch->count, sizeof *destinations);
  if (messages == NULL || vectors == NULL || destinations == NULL) {
    batch->err = ENOMEM;
  } else {
    for (uint32_t i = 0; i < batch->count; i++) {
      vectors[i].iov_base = batch->data + batch->table[3 * i];
      vectors[i].iov_len = batch->table[3 * i + 1];
      destinations[i].nl_family = AF_NETLINK;
      destinations[i].nl_groups = batch->table[3 * i + 2];
      messages[i].msg_hdr.msg_name = &destinations[i];
      messages[i].msg_hdr.msg_namelen = sizeof destinations[i];
      messages[i].msg_hdr.msg_iov = &vectors[i];
      messages[i].msg_hdr.msg_iovlen = 1;
    }
    uint32_t done = 0;
    while (done < batch->count) {
      int n = sendmmsg(batch->fd, messages + done, batch->count - done, 0);
      if (n > 0) {
        done += (uint32_t)n;
        batch->sent += (uint32_t)n;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == ECONNREFUSED) {
        done++;  // nobody listens to that group: not an error for a broadcast
      } else {
        // That datagram is not sent (one too large for the socket, say: EMSGSIZE); the rest
        // still go, as one send an event did. The first error is reported.
        if (batch->err == 0) batch->err = n < 0 ? errno : EIO;
        done++;
      }
    }
  }
  free(messages);
  free(vectors);
  free(destinations);
}

static void batch_complete(napi_env env, napi_status status, void *data) {
  Batch *batch = data;
  napi_value result;
  napi_create_int32(env, status != napi_ok ? -ECANCELED : batch->err != 0 ? -batch->err : (int32_t)batch->sent, &result);
  napi_resolve_deferred(env, batch->deferred, result);
  napi_delete_reference(env, batch->buffer);
  napi_delete_async_work(env, batch->work);
  free(batch->table);
  free(batch);
}

// sendBatch(fd, buffer, table) -> Promise<datagrams sent | -errno>: table is a Uint32Array of
// (offset, length, groups) per datagram within buffer; the buffer is held until the batch ends.
// A datagram that fails is skipped and the others sent; then the first error is the result.
static napi_value send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  char *data;
  size_t length;
  napi_typedarray_type type;
  size_t entries;
  void *table;
  if (argc < 3 || !get_int(env, argv[0], &fd) || napi_get_buffer_info(env, argv[1], (void **)&data, &length) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &type, &entries, &table, NULL, NULL) != napi_ok || type != napi_uint32_array || entries % 3 != 0) {
    napi_throw_type_error(env, NULL, "sendBatch(fd, Buffer, Uint32Array) expects an fd, a Buffer and (offset, length, groups) triples");
    return NULL;
  }
  for (size_t i = 0; i < entries; i += 3) {
    const uint32_t *t = table;
    if ((size_t)t[i] + t[i + 1] > length) {
      napi_throw_range_error(env, NULL, "sendBatch: a datagram lies outside the buffer");
      return NULL;
    }
  }
  Batch *batch = calloc(1, sizeof *batch);
  if (batch == NULL || (batch->table = malloc(entries * sizeof(uint32_t) + 1)) == NULL) {
    free(batch);
    return throw_errno(env, "sendBatch", ENOMEM);
  }
  memcpy(batch->table, table, entries * sizeof(uint32_t));
  batch->fd = fd;
  batch->data = data;
  batch->count = (uint32_t)(entries / 3);
  CHECK(napi_create_reference(env, argv[1], 1, &batch->buffer));
  return queue_promised_work(env, "hotplugd.sendBatch", batch_execute, batch_complete, batch, &batch->deferred, &batch->work);
}

napi_value broadcast_batch_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sendBatch", NULL, send_batch, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
