#include "private_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "courier/error.hpp"

namespace courier::detail {

void CheckPrivateFile(const std::filesystem::path& path, std::string_view what) {
  const auto fail = [&](const std::string& why) {
    throw Error(ErrorCode::kConfig, std::string(what) + " " + path.string() + ": " + why);
  };
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) fail(std::strerror(errno));
  if (!S_ISREG(info.st_mode)) fail("not a regular file");
  if ((info.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", info.st_mode & 07777);
    fail(std::string("mode ") + mode +
         " lets group or others read it; run chmod 600 on it (secrets must be private)");
  }
}

void WritePrivateFile(const std::filesystem::path& path, std::string_view contents) {
  const std::filesystem::path temp = path.string() + ".tmp";
  // Created 0600 from the start: the secret never sits in a readable file, even briefly.
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(ErrorCode::kIo, "cannot write " + temp.string() + ": " + std::strerror(errno));
  ::fchmod(fd, 0600);
  std::size_t written = 0;
  bool ok = true;
  while (written < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    written += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int saved_errno = errno;
  ::close(fd);
  if (!ok || std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    throw Error(ErrorCode::kIo, "cannot write " + path.string() + ": " + std::strerror(ok ? errno : saved_errno));
  }
}

}  // namespace courier::detail
