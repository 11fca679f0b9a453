// sysfs attributes read without Node's fs: in one open and one read, or kept open and read
// again at offset 0 (src/uevent/sysfs.ts, src/uevent/open-attributes.ts). Errors come back as
// -errno, not exceptions: a missing attribute is the common case when rules look up parents.
#include "napi_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

// readAttribute(path) -> string | number: a sysfs attribute's text in one open and one read,
// or -errno, without an exception (a missing attribute is the common case when rules look
// up a device's parents: Node's readFileSync takes six system calls, and a thrown ENOENT
// ~20 µs). A link is -ELOOP (O_NOFOLLOW), a directory -EISDIR, and a value longer than a
// page -EFBIG (the caller reads it otherwise).
static napi_value read_attribute(napi_env env, napi_callback_info info) {
  char path[4096];
  if (!path_argument(env, info, path, sizeof path, "readAttribute(path) expects a path")) return NULL;
  napi_value result;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    CHECK(napi_create_int32(env, -errno, &result));
    return result;
  }
  char buffer[4097];
  size_t total = 0;
  int err = 0;
  for (;;) {
    ssize_t n = read(fd, buffer + total, sizeof buffer - total);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    total += (size_t)n;
    if (total == sizeof buffer) {
      err = EFBIG;
      break;
    }
    // sysfs hands the whole value to the first read; a short read of a file is its end.
    if (n == 0 || (size_t)n < sizeof buffer - (total - (size_t)n)) break;
  }
  close(fd);
  if (err != 0) CHECK(napi_create_int32(env, -err, &result));
  else CHECK(napi_create_string_utf8(env, buffer, total, &result));
  return result;
}

// openAttribute(path) -> fd | -errno: an attribute kept open (O_NOFOLLOW: a link is -ELOOP).
static napi_value open_attribute(napi_env env, napi_callback_info info) {
  char path[4096];
  if (!path_argument(env, info, path, sizeof path, "openAttribute(path) expects a path")) return NULL;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  napi_value result;
  CHECK(napi_create_int32(env, fd < 0 ? -errno : fd, &result));
  return result;
}

// preadAttribute(fd) -> string | -errno: an open attribute's value now. A sysfs attribute read
// at offset 0 is shown afresh; one whose device went answers -ENODEV. One system call where
// opening costs three. Longer than a page: -EFBIG.
static napi_value pread_attribute(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!int_argument(env, info, &fd, "preadAttribute(fd) expects an fd")) return NULL;
  char buffer[4097];
  ssize_t n;
  do {
    n = pread(fd, buffer, sizeof buffer, 0);
  } while (n < 0 && errno == EINTR);
  napi_value result;
  if (n < 0) CHECK(napi_create_int32(env, -errno, &result));
  else if ((size_t)n == sizeof buffer) CHECK(napi_create_int32(env, -EFBIG, &result));
  else CHECK(napi_create_string_utf8(env, buffer, (size_t)n, &result));
  return result;
}

// closeFd(fd): closes an fd this process opened (an attribute it no longer keeps).
static napi_value close_fd(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!int_argument(env, info, &fd, "closeFd(fd) expects an fd")) return NULL;
  close(fd);
  return NULL;
}

// Adds these functions to the addon's exports (native/addon.c).
napi_value attributes_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"readAttribute", NULL, read_attribute, NULL, NULL, NULL, napi_default, NULL},
      {"openAttribute", NULL, open_attribute, NULL, NULL, NULL, napi_default, NULL},
      {"preadAttribute", NULL, pread_attribute, NULL, NULL, NULL, napi_default, NULL},
      {"closeFd", NULL, close_fd, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
