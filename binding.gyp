{
  "targets": [
    {
      "target_name": "uevent_socket",
      "sources": ["native/uevent_socket.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
