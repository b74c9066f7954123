// libFuzzer target: EFI variable payload decoding (bootloader/efivars.cpp decode_efi_string)
// and the encoding bootstate writes.
// Properties: a decoded string encodes to a variable file that decodes to the same string; and
// any input taken as UTF-8 either is refused or encodes to a file that decodes back to it up to
// its first NUL.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bootloader/efivars.hpp"
#include "tests/fuzz/fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  auto text = bootstate::decode_efi_string(bytes);
  if (text) {
    auto file = bootstate::encode_efi_string_file(*text);
    FUZZ_CHECK(file.has_value(), "a decoded string cannot be encoded");
    FUZZ_CHECK(file->size() >= 6, "an encoded variable lacks its attributes or NUL");
    auto again = bootstate::decode_efi_string(std::string_view(*file).substr(4));
    FUZZ_CHECK(again.has_value() && *again == *text, "decode → encode → decode changed a string");
  }

  auto file = bootstate::encode_efi_string_file(bytes);
  if (file) {
    auto back = bootstate::decode_efi_string(std::string_view(*file).substr(4));
    FUZZ_CHECK(back.has_value(), "an encoded string does not decode");
    FUZZ_CHECK(*back == bytes.substr(0, bytes.find('\0')), "encode → decode changed a string");
  }
  return 0;
}
