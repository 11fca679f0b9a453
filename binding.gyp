{
  "targets": [
    {
      "target_name": "hotplugd",
      "sources": ["native/addon.c", "native/uevent_socket.c", "native/system_calls.c", "native/attributes.c", "native/kernel_modules.c", "native/broadcast_batch.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
