// System calls Node.js does not offer and the daemon needs: the credentials of a unix
// socket peer (SO_PEERCRED), a datagram to systemd's notify socket (sd_notify), an
// advisory lock that dies with the process (flock), for "one daemon at a time", and the
// hypervisor's CPUID signature (udev's CONST{virt}, as systemd-detect-virt reads it),
// and udev's control socket: AF_UNIX SOCK_SEQPACKET, which Node's net module lacks, with
// each message's sender credentials (SCM_CREDENTIALS), inotify for watched device nodes and
// BLKRRPART for a watched disk written to, mknod for a node devtmpfs did not make, and
// the ethtool driver query (net_setup_link). The fds are polled by the
// uevent addon's watcher, which closes them.
#define _GNU_SOURCE  // struct ucred
#include "napi_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <linux/ethtool.h>
#include <linux/fs.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>
#if defined(__i386__) || defined(__x86_64__)
#include <cpuid.h>
#endif

// peercred(fd) -> { pid, uid, gid } of the process at the other end of a unix socket.
static napi_value peercred(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "peercred(fd) expects an fd");
    return NULL;
  }
  struct ucred cred;
  socklen_t length = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) < 0) return throw_errno(env, "getsockopt(SO_PEERCRED)", errno);
  napi_value result;
  napi_create_object(env, &result);
  set_int(env, result, "pid", cred.pid);
  set_int(env, result, "uid", cred.uid);
  set_int(env, result, "gid", cred.gid);
  return result;
}

// notify(socketPath, message): one datagram to $NOTIFY_SOCKET ("@name" is abstract).
static napi_value notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  char message[4096];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || !get_string(env, argv[0], path, sizeof path) ||
      !get_string(env, argv[1], message, sizeof message)) {
    napi_throw_type_error(env, "EINVAL", "notify(path, message) expects a socket path and a message under 4 KiB");
    return NULL;
  }
  struct sockaddr_un address;
  memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  size_t path_length = strlen(path);
  if (path_length == 0 || path_length > sizeof address.sun_path) {
    napi_throw_error(env, "EINVAL", "NOTIFY_SOCKET is empty or too long");
    return NULL;
  }
  memcpy(address.sun_path, path, path_length);
  if (path[0] == '@') address.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket(AF_UNIX)", errno);
  socklen_t address_length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_length);
  ssize_t sent = sendto(fd, message, strlen(message), MSG_NOSIGNAL, (struct sockaddr *)&address, address_length);
  int err = errno;
  close(fd);
  if (sent < 0) return throw_errno(env, "sendto(NOTIFY_SOCKET)", err);
  return NULL;
}

// lock(path) -> fd: an exclusive flock held until the process exits; EWOULDBLOCK if taken.
static napi_value lock(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char path[4096];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !get_string(env, argv[0], path, sizeof path)) {
    napi_throw_type_error(env, "EINVAL", "lock(path) expects a path");
    return NULL;
  }
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return throw_errno(env, "open", errno);
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "flock", err);
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

// hypervisor() -> the 12-character CPUID signature of the hypervisor ("KVMKVMKVM"), "" when
// CPUID says there is one but gives no signature, or null: no hypervisor, or not x86.
static napi_value hypervisor(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#if defined(__i386__) || defined(__x86_64__)
  unsigned int eax, ebx, ecx, edx;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & 0x80000000U)) {
    unsigned int sig[3];
    __cpuid(0x40000000U, eax, sig[0], sig[1], sig[2]);
    char text[13];
    memcpy(text, sig, 12);
    text[12] = 0;
    CHECK(napi_create_string_utf8(env, text, strnlen(text, 12), &result));
    return result;
  }
#endif
  CHECK(napi_get_null(env, &result));
  return result;
}

static int path_arg(napi_env env, napi_value value, char *out, size_t size) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, out, size, &length) != napi_ok || length == 0 || length >= size - 1) return 0;
  return 1;
}

// seqpacketListen(path) -> fd: a nonblocking SOCK_SEQPACKET socket listening at `path`,
// its accepted connections passing credentials. The caller makes sure no live daemon
// answers there first: a socket file left behind is replaced.
static napi_value seqpacket_listen(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (argc < 1 || !path_arg(env, argv[0], addr.sun_path, sizeof addr.sun_path)) {
    napi_throw_type_error(env, NULL, "seqpacketListen(path) expects a socket path shorter than 107 bytes");
    return NULL;
  }
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && !(errno == EADDRINUSE && unlink(addr.sun_path) == 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0)) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind", err);
  }
  if (listen(fd, 64) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "listen", err);
  }
  napi_value result;
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

// acceptPeer(fd) -> { fd, uid, pid } of the next connection, or null when none waits.
static napi_value accept_peer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t listener;
  if (argc < 1 || !get_int(env, argv[0], &listener)) {
    napi_throw_type_error(env, NULL, "acceptPeer(fd) expects an fd");
    return NULL;
  }
  napi_value result;
  int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) {
      CHECK(napi_get_null(env, &result));
      return result;
    }
    return throw_errno(env, "accept4", errno);
  }
  struct ucred cred = {.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
  socklen_t length = sizeof cred;
  getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length);
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
  napi_value fd_value, uid, pid;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_int32(env, fd, &fd_value));
  CHECK(napi_create_int64(env, cred.uid == (uid_t)-1 ? -1 : (int64_t)cred.uid, &uid));
  CHECK(napi_create_int32(env, cred.pid, &pid));
  CHECK(napi_set_named_property(env, result, "fd", fd_value));
  CHECK(napi_set_named_property(env, result, "uid", uid));
  CHECK(napi_set_named_property(env, result, "pid", pid));
  return result;
}

// recvMessage(fd, buffer) -> { size, uid } of one message (size 0: the peer closed;
// size above the buffer's: it was cut), or null when none waits. uid is the sender's
// from SCM_CREDENTIALS, -1 when the message carried none.
static napi_value recv_message(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  void *data = NULL;
  size_t capacity = 0;
  if (argc < 2 || !get_int(env, argv[0], &fd) || napi_get_buffer_info(env, argv[1], &data, &capacity) != napi_ok) {
    napi_throw_type_error(env, NULL, "recvMessage(fd, buffer) expects an fd and a Buffer");
    return NULL;
  }
  struct iovec iov = {.iov_base = data, .iov_len = capacity};
  union {
    struct cmsghdr align;
    char space[CMSG_SPACE(sizeof(struct ucred))];
  } control;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof control.space};
  ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
  napi_value result;
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      CHECK(napi_get_null(env, &result));
      return result;
    }
    return throw_errno(env, "recvmsg", errno);
  }
  int64_t uid = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
      struct ucred cred;
      memcpy(&cred, CMSG_DATA(c), sizeof cred);
      uid = cred.uid;
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      // Descriptors nobody asked for: close them, never keep them.
      int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      int *fds = (int *)CMSG_DATA(c);
      for (int i = 0; i < count; i++) close(fds[i]);
    }
  }
  napi_value size, uid_value;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_int64(env, n, &size));
  CHECK(napi_create_int64(env, uid, &uid_value));
  CHECK(napi_set_named_property(env, result, "size", size));
  CHECK(napi_set_named_property(env, result, "uid", uid_value));
  return result;
}

// inotifyInit() -> fd (nonblocking): udev's OPTIONS+="watch" on device nodes.
static napi_value inotify_init_fd(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return throw_errno(env, "inotify_init1", errno);
  napi_value result;
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

// inotifyWatchClose(fd, path) -> wd: reports when a file opened for writing is closed.
static napi_value inotify_watch_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  char path[4096];
  if (argc < 2 || !get_int(env, argv[0], &fd) || !path_arg(env, argv[1], path, sizeof path)) {
    napi_throw_type_error(env, NULL, "inotifyWatchClose(fd, path) expects an fd and a path");
    return NULL;
  }
  int wd = inotify_add_watch(fd, path, IN_CLOSE_WRITE);
  if (wd < 0) return throw_errno(env, "inotify_add_watch", errno);
  napi_value result;
  CHECK(napi_create_int32(env, wd, &result));
  return result;
}

// inotifyUnwatch(fd, wd): stops a watch (EINVAL, a watch gone with its file, is fine).
static napi_value inotify_unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, wd;
  if (argc < 2 || !get_int(env, argv[0], &fd) || !get_int(env, argv[1], &wd)) {
    napi_throw_type_error(env, NULL, "inotifyUnwatch(fd, wd) expects two integers");
    return NULL;
  }
  if (inotify_rm_watch(fd, wd) < 0 && errno != EINVAL) return throw_errno(env, "inotify_rm_watch", errno);
  return NULL;
}

// inotifyRead(fd) -> [[wd, mask], ...] of the events waiting (empty when none).
static napi_value inotify_read(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !get_int(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "inotifyRead(fd) expects an fd");
    return NULL;
  }
  napi_value result;
  CHECK(napi_create_array(env, &result));
  uint32_t count = 0;
  char buffer[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      return throw_errno(env, "read(inotify)", errno);
    }
    if (n == 0) break;
    for (char *at = buffer; at < buffer + n;) {
      const struct inotify_event *e = (const struct inotify_event *)at;
      napi_value pair, wd, mask;
      CHECK(napi_create_array_with_length(env, 2, &pair));
      CHECK(napi_create_int32(env, e->wd, &wd));
      CHECK(napi_create_uint32(env, e->mask, &mask));
      CHECK(napi_set_element(env, pair, 0, wd));
      CHECK(napi_set_element(env, pair, 1, mask));
      CHECK(napi_set_element(env, result, count++, pair));
      at += sizeof(struct inotify_event) + e->len;
    }
  }
  return result;
}

// rereadPartitions(path) -> null, or why it failed (strerror): BLKRRPART on a
// disk, as udevd does after a watched disk was written. The exclusive flock first, so a disk
// a program still holds (a partitioner, a mount) is left alone.
static napi_value reread_partitions(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[4096];
  if (argc < 1 || !path_arg(env, argv[0], path, sizeof path)) {
    napi_throw_type_error(env, NULL, "rereadPartitions(path) expects a path");
    return NULL;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  int failed = 0;
  if (fd < 0) failed = errno;
  else {
    if (flock(fd, LOCK_EX | LOCK_NB) < 0 || ioctl(fd, BLKRRPART, 0) < 0) failed = errno;
    close(fd);
  }
  napi_value result;
  if (failed == 0) CHECK(napi_get_null(env, &result));
  else CHECK(napi_create_string_utf8(env, strerror(failed), NAPI_AUTO_LENGTH, &result));
  return result;
}

// mknod(path, isBlock, mode, major, minor): a device node where devtmpfs did not make one.
static napi_value make_node(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  char path[4096];
  size_t length = 0;
  int32_t block = 0, mode = 0, major_number = 0, minor_number = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      napi_get_value_string_utf8(env, argv[0], path, sizeof path, &length) != napi_ok || length >= sizeof path - 1 ||
      !get_int(env, argv[1], &block) || !get_int(env, argv[2], &mode) || !get_int(env, argv[3], &major_number) ||
      !get_int(env, argv[4], &minor_number)) {
    napi_throw_type_error(env, "EINVAL", "mknod(path, isBlock, mode, major, minor) expects a string and four integers");
    return NULL;
  }
  dev_t device = makedev((unsigned)major_number, (unsigned)minor_number);
  if (mknod(path, (block ? S_IFBLK : S_IFCHR) | ((mode_t)mode & 07777), device) < 0) return throw_errno(env, "mknod", errno);
  return NULL;
}

// ethtoolDriver(ifname) -> the interface's driver as ethtool reports it ("veth",
// "virtio_net"), or null when it has none (udev's ID_NET_DRIVER, net_setup_link).
static napi_value ethtool_driver(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  size_t length = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], ifr.ifr_name, sizeof ifr.ifr_name, &length) != napi_ok || length == 0 || length >= IFNAMSIZ) {
    napi_throw_type_error(env, NULL, "ethtoolDriver(ifname) expects an interface name");
    return NULL;
  }
  struct ethtool_drvinfo drvinfo = {.cmd = ETHTOOL_GDRVINFO};
  ifr.ifr_data = (void *)&drvinfo;
  napi_value result;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int rc = ioctl(fd, SIOCETHTOOL, &ifr);
  int err = errno;
  close(fd);
  if (rc < 0) {
    if (err == EOPNOTSUPP || err == ENODEV || err == ENOENT) {
      CHECK(napi_get_null(env, &result));
      return result;
    }
    return throw_errno(env, "ioctl(SIOCETHTOOL)", err);
  }
  drvinfo.driver[sizeof drvinfo.driver - 1] = 0;
  if (drvinfo.driver[0] == 0) CHECK(napi_get_null(env, &result));
  else CHECK(napi_create_string_utf8(env, drvinfo.driver, NAPI_AUTO_LENGTH, &result));
  return result;
}

// Adds these functions to the addon's exports (native/addon.c).
napi_value system_calls_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"peercred", NULL, peercred, NULL, NULL, NULL, napi_default, NULL},
      {"notify", NULL, notify, NULL, NULL, NULL, napi_default, NULL},
      {"lock", NULL, lock, NULL, NULL, NULL, napi_default, NULL},
      {"hypervisor", NULL, hypervisor, NULL, NULL, NULL, napi_default, NULL},
      {"seqpacketListen", NULL, seqpacket_listen, NULL, NULL, NULL, napi_default, NULL},
      {"acceptPeer", NULL, accept_peer, NULL, NULL, NULL, napi_default, NULL},
      {"recvMessage", NULL, recv_message, NULL, NULL, NULL, napi_default, NULL},
      {"inotifyInit", NULL, inotify_init_fd, NULL, NULL, NULL, napi_default, NULL},
      {"inotifyWatchClose", NULL, inotify_watch_close, NULL, NULL, NULL, napi_default, NULL},
      {"inotifyUnwatch", NULL, inotify_unwatch, NULL, NULL, NULL, napi_default, NULL},
      {"inotifyRead", NULL, inotify_read, NULL, NULL, NULL, napi_default, NULL},
      {"rereadPartitions", NULL, reread_partitions, NULL, NULL, NULL, napi_default, NULL},
      {"mknod", NULL, make_node, NULL, NULL, NULL, napi_default, NULL},
      {"ethtoolDriver", NULL, ethtool_driver, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

