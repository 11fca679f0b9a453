// Netlink sockets for Node — NETLINK_KOBJECT_UEVENT for devices, NETLINK_ROUTE for links and
// addresses, one code path for both, with the three things the `netlink` package cannot give us: SO_RCVBUFFORCE (a receive buffer above rmem_max as root),
// a poll watcher that can be stopped and started (backpressure: when our queue is
// full we stop reading and let the kernel buffer absorb the burst), and batch reads
// into one preallocated buffer that report each datagram's sender port.
#include "napi_helpers.h"
#include <uv.h>

#include <errno.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// The kernel caps one uevent at UEVENT_BUFFER_SIZE (2048) plus the header; a read
// slot this large never truncates a real one and lets us detect forged giants. A route
// dump's datagrams are bigger (up to 32 KiB): the caller passes its own slot size.
#define SLOT_MIN 8192

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int fd;
  int polling;
  int closed;         // close requested: callback released, uv_close under way
  int handle_closed;  // libuv is done with the handle
  int finalized;      // the JS handle has been garbage-collected
} Watcher;

// open(protocol, groups, rcvbufBytes) -> { fd, rcvbuf, forced, port }
static napi_value open_socket(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t protocol = 0, groups = 0, wanted = 0;
  if (argc < 3 || !get_int(env, argv[0], &protocol) || !get_int(env, argv[1], &groups) || !get_int(env, argv[2], &wanted) ||
      (protocol != NETLINK_KOBJECT_UEVENT && protocol != NETLINK_ROUTE)) {
    napi_throw_type_error(env, NULL, "open(protocol, groups, rcvbufBytes) expects NETLINK_KOBJECT_UEVENT or NETLINK_ROUTE and two integers");
    return NULL;
  }
  int route = protocol == NETLINK_ROUTE;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
  if (fd < 0) return throw_errno(env, route ? "socket(AF_NETLINK, NETLINK_ROUTE)" : "socket(AF_NETLINK, NETLINK_KOBJECT_UEVENT)", errno);

  // SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN; without it we
  // take what SO_RCVBUF allows and report the figure so the caller can warn.
  int forced = setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &wanted, sizeof wanted) == 0;
  if (!forced) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &wanted, sizeof wanted);

  struct sockaddr_nl addr;
  memset(&addr, 0, sizeof addr);
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = (uint32_t)groups;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, route ? "bind(NETLINK_ROUTE)" : "bind(NETLINK_KOBJECT_UEVENT)", err);
  }
  // Our port id: the kernel's answers to our own requests (a dump) carry it.
  struct sockaddr_nl bound;
  socklen_t bound_len = sizeof bound;
  memset(&bound, 0, sizeof bound);
  getsockname(fd, (struct sockaddr *)&bound, &bound_len);
  int actual = 0;
  socklen_t len = sizeof actual;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &actual, &len);

  napi_value result, forced_value;
  CHECK(napi_create_object(env, &result));
  set_int(env, result, "fd", fd);
  set_int(env, result, "rcvbuf", actual);
  set_int(env, result, "port", (int32_t)bound.nl_pid);
  CHECK(napi_get_boolean(env, forced, &forced_value));
  CHECK(napi_set_named_property(env, result, "forced", forced_value));
  return result;
}

// recv(fd, buffer, meta, slot) -> count. Reads datagrams back to back into `buffer` until
// less than `slot` bytes are left, `meta` is full, or the socket is empty. meta[0] receives the
// number of ENOBUFS reports seen; then for datagram i: meta[1+3i] offset,
// meta[2+3i] length (negative: truncated to -length), meta[3+3i] sender port.
static napi_value recv_batch(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, slot = SLOT_MIN;
  char *data;
  size_t capacity;
  napi_typedarray_type type;
  size_t meta_length;
  void *meta_data;
  if (argc < 3 || !get_int(env, argv[0], &fd) ||
      napi_get_buffer_info(env, argv[1], (void **)&data, &capacity) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &type, &meta_length, &meta_data, NULL, NULL) != napi_ok ||
      type != napi_int32_array || meta_length < 4 || (argc >= 4 && (!get_int(env, argv[3], &slot) || slot < SLOT_MIN))) {
    napi_throw_type_error(env, NULL, "recv(fd, Buffer, Int32Array, slot?) expects an fd, a Buffer, an Int32Array of 4+ entries and a slot of 8192+ bytes");
    return NULL;
  }
  int32_t *meta = meta_data;
  size_t max_count = (meta_length - 1) / 3, count = 0, offset = 0;
  int32_t enobufs = 0;
  while (count < max_count && capacity >= offset + (size_t)slot) {
    struct sockaddr_nl sender;
    struct iovec iov = {.iov_base = data + offset, .iov_len = capacity - offset};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &sender;
    msg.msg_namelen = sizeof sender;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t n = recvmsg(fd, &msg, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        enobufs++;
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      meta[0] = enobufs;
      return throw_errno(env, "recvmsg(netlink)", errno);
    }
    meta[1 + 3 * count] = (int32_t)offset;
    meta[2 + 3 * count] = (msg.msg_flags & MSG_TRUNC) ? -(int32_t)n : (int32_t)n;
    meta[3 + 3 * count] = (int32_t)sender.nl_pid;
    offset += (size_t)n;
    count++;
  }
  meta[0] = enobufs;
  napi_value result;
  CHECK(napi_create_uint32(env, (uint32_t)count, &result));
  return result;
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  Watcher *w = handle->data;
  // On POLLERR (a pending socket error such as ENOBUFS) libuv stops the handle
  // before calling us; JS reads (which clears the error) and starts it again.
  if (status < 0) w->polling = 0;
  napi_handle_scope scope;
  napi_open_handle_scope(w->env, &scope);
  napi_value callback, global, arg;
  napi_get_reference_value(w->env, w->callback, &callback);
  napi_get_global(w->env, &global);
  napi_create_int32(w->env, status, &arg);
  napi_make_callback(w->env, w->context, global, callback, 1, &arg, NULL);
  napi_close_handle_scope(w->env, scope);
}

static void on_closed(uv_handle_t *handle) {
  Watcher *w = handle->data;
  close(w->fd);
  w->handle_closed = 1;
  if (w->finalized) free(w);
}

static void close_once(napi_env env, Watcher *w) {
  if (w->closed) return;
  w->closed = 1;
  napi_delete_reference(env, w->callback);
  napi_async_destroy(env, w->context);
  uv_close((uv_handle_t *)&w->poll, on_closed);
}

// The memory is freed only when both libuv and the JS handle are done with it.
static void finalize_watcher(napi_env env, void *data, void *hint) {
  (void)hint;
  Watcher *w = data;
  w->finalized = 1;
  close_once(env, w);
  if (w->handle_closed) free(w);
}

static Watcher *unwrap(napi_env env, napi_value value) {
  Watcher *w = NULL;
  if (napi_get_value_external(env, value, (void **)&w) != napi_ok || w == NULL) {
    napi_throw_type_error(env, NULL, "expected a watcher handle");
    return NULL;
  }
  if (w->closed) {
    napi_throw_error(env, "ECLOSED", "the uevent socket is closed");
    return NULL;
  }
  return w;
}

// watch(fd, onReadable) -> handle. The watcher owns the fd from now on.
static napi_value watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 2 || !get_int(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "watch(fd, onReadable) expects an fd and a function");
    return NULL;
  }
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  Watcher *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, "calloc", ENOMEM);
  w->env = env;
  w->fd = fd;
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc != 0) {
    free(w);
    return throw_errno(env, "uv_poll_init", -rc);
  }
  w->poll.data = w;
  napi_value name, handle;
  CHECK(napi_create_reference(env, argv[1], 1, &w->callback));
  CHECK(napi_create_string_utf8(env, "hotplugd:uevent", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &w->context));
  CHECK(napi_create_external(env, w, finalize_watcher, NULL, &handle));
  return handle;
}

static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Watcher *w = unwrap(env, argv[0]);
  if (!w) return NULL;
  if (!w->polling) {
    int rc = uv_poll_start(&w->poll, UV_READABLE, on_readable);
    if (rc != 0) return throw_errno(env, "uv_poll_start", -rc);
    w->polling = 1;
  }
  return NULL;
}

static napi_value stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Watcher *w = unwrap(env, argv[0]);
  if (!w) return NULL;
  if (w->polling) {
    uv_poll_stop(&w->poll);
    w->polling = 0;
  }
  return NULL;
}

static napi_value close_watcher(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Watcher *w = NULL;
  if (napi_get_value_external(env, argv[0], (void **)&w) == napi_ok && w) close_once(env, w);
  return NULL;
}

// send(fd, buffer, groups) -> bytes: one datagram to the multicast groups (root only:
// the kernel refuses userspace multicast on this protocol without CAP_NET_ADMIN), or with
// groups 0 to the kernel itself (a route dump request).
// ECONNREFUSED means nobody listens, which is not an error for a broadcast.
static napi_value send_datagram(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, groups;
  char *data;
  size_t length;
  if (argc < 3 || !get_int(env, argv[0], &fd) || napi_get_buffer_info(env, argv[1], (void **)&data, &length) != napi_ok ||
      !get_int(env, argv[2], &groups)) {
    napi_throw_type_error(env, NULL, "send(fd, Buffer, groups) expects an fd, a Buffer and an integer");
    return NULL;
  }
  struct sockaddr_nl destination;
  memset(&destination, 0, sizeof destination);
  destination.nl_family = AF_NETLINK;
  destination.nl_groups = (uint32_t)groups;
  ssize_t sent;
  do {
    sent = sendto(fd, data, length, 0, (struct sockaddr *)&destination, sizeof destination);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0 && errno != ECONNREFUSED) return throw_errno(env, "sendto(netlink)", errno);
  napi_value result;
  CHECK(napi_create_int32(env, sent < 0 ? 0 : (int32_t)sent, &result));
  return result;
}

// Adds these functions to the addon's exports (native/addon.c).
napi_value uevent_socket_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, open_socket, NULL, NULL, NULL, napi_default, NULL},
      {"recv", NULL, recv_batch, NULL, NULL, NULL, napi_default, NULL},
      {"watch", NULL, watch, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, start, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, stop, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, close_watcher, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, send_datagram, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

