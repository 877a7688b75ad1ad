// private_file.hpp — reading and writing files that hold secrets (payload keyrings, Curve
// secret keys): refused when group or others may read them, written atomically with mode
// 0600 from the first byte.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace courier::detail {

// Throws: Error(kConfig) naming `path` and `what` ("key file") if it is missing, not a
// regular file, or readable/writable by group or others.
void CheckPrivateFile(const std::filesystem::path& path, std::string_view what);

// Writes `contents` to `path` atomically (temp file + rename) with mode 0600.
// Throws: Error(kIo).
void WritePrivateFile(const std::filesystem::path& path, std::string_view contents);

}  // namespace courier::detail
