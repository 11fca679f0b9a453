{
  "targets": [
    {
      "target_name": "uevent_socket",
      "sources": ["native/uevent_socket.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "system_calls",
      "sources": ["native/system_calls.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
