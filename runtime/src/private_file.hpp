// private_file.hpp — reading and writing files that hold secrets (payload keyrings, Curve
// secret keys): refused when group or others may read them, written with mode 0600 from the
// first byte.
//
// Writes are atomic and safe between processes: the contents go to a temp file with a
// unique name in the same directory (created O_EXCL, mode 0600, close-on-exec), are
// fsync'ed, and only then published under the final name, so a reader never sees a partial
// file and two writers never share a temp file. The directory is fsync'ed after publishing.
// On any failure the temp file is removed. Thread-safety: free functions; concurrent calls
// (from threads or processes) on one path are safe in the sense above.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace courier::detail {

// Throws: Error(kConfig) naming `path` and `what` ("key file") if it is missing, not a
// regular file, or readable/writable by group or others.
void CheckPrivateFile(const std::filesystem::path& path, std::string_view what);

// Writes `contents` to `path` with mode 0600, replacing any existing file atomically
// (unique temp file + rename). Throws: Error(kIo).
void WritePrivateFile(const std::filesystem::path& path, std::string_view contents);

// Creates `path` holding `contents` with mode 0600 unless it already exists, atomically
// and race-free: of several processes creating one path at once, exactly one succeeds and
// the file is whole from the moment it appears (unique temp file published with
// renameat2(RENAME_NOREPLACE), or link() where the file system lacks it).
// Returns: true if this call created the file; false if `path` already existed (nothing
// is left behind). Throws: Error(kIo).
bool CreatePrivateFile(const std::filesystem::path& path, std::string_view contents);

}  // namespace courier::detail
