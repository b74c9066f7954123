// bootstate_firmware_step must not link glib: the `bootstate` binary, which the initrd
// carries, links it. link_probe is a program built from that library alone; if the library's
// link interface named libfwupd or glib, they would show up in its ldd output.
#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <string>

namespace {

std::string command_output(const std::string& command) {
  std::string text;
  std::array<char, 512> buffer{};
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return text;
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) text += buffer.data();
  ::pclose(pipe);
  return text;
}

}  // namespace

TEST_CASE("firmware step library: links no glib, gio or libfwupd") {
  const std::string probe = BOOTSTATE_LINK_PROBE;
  const std::string libraries = command_output("ldd " + probe + " 2>&1");
  INFO("ldd " << probe << ":\n" << libraries);
  REQUIRE(libraries.find("libc.so") != std::string::npos);  // ldd really ran on it
  for (const char* forbidden : {"libglib", "libgio", "libgobject", "libfwupd", "libjson-glib"}) {
    CHECK(libraries.find(forbidden) == std::string::npos);
  }
}

TEST_CASE("firmware helper: is the binary that links libfwupd (the probe above is meaningful)") {
  const std::string libraries =
      command_output(std::string("ldd ") + BOOTSTATE_FWUPD_HELPER + " 2>&1");
  INFO(libraries);
  CHECK(libraries.find("libfwupd") != std::string::npos);
  CHECK(libraries.find("libglib") != std::string::npos);
}
