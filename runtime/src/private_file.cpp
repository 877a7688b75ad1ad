#include "private_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "courier/error.hpp"

namespace courier::detail {

namespace {

namespace fs = std::filesystem;

[[noreturn]] void FailWrite(const fs::path& path, int error) {
  throw Error(ErrorCode::kIo, "cannot write " + path.string() + ": " + std::strerror(error));
}

fs::path DirectoryOf(const fs::path& path) {
  const fs::path parent = path.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

// The directory that will hold `target`, opened before anything is written so it can be
// fsync'ed after publishing (a failure to open it leaves nothing behind).
class Directory {
 public:
  explicit Directory(const fs::path& target)
      : fd_(::open(DirectoryOf(target).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
    if (fd_ < 0) FailWrite(target, errno);
  }
  ~Directory() { ::close(fd_); }
  Directory(const Directory&) = delete;
  Directory& operator=(const Directory&) = delete;

  // Makes the new directory entry durable. Throws: Error(kIo).
  void Sync(const fs::path& target) const {
    // EINVAL: the file system cannot sync directories; there is nothing more to do.
    if (::fsync(fd_) != 0 && errno != EINVAL) FailWrite(target, errno);
  }

 private:
  int fd_;
};

// A temp file with a unique name beside `target` (TARGET.tmp.XXXXXX): created with
// O_CREAT|O_EXCL, mode 0600 and close-on-exec, so no other writer can share it and the
// secret never sits in a readable file. Removed on destruction unless Published().
class TempFile {
 public:
  explicit TempFile(const fs::path& target) : target_(target) {
    std::string name = (DirectoryOf(target) / (target.filename().string() + ".tmp.XXXXXX")).string();
    fd_ = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd_ < 0) FailWrite(target_, errno);
    path_ = std::move(name);
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& path() const { return path_; }

  // Writes all of `contents`, fsyncs and closes. Throws: Error(kIo).
  void Write(std::string_view contents) {
    if (::fchmod(fd_, 0600) != 0) FailWrite(target_, errno);  // mkostemp's 0600 is masked by umask
    std::size_t written = 0;
    while (written < contents.size()) {
      const ssize_t n = ::write(fd_, contents.data() + written, contents.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) FailWrite(target_, errno);
      if (n == 0) FailWrite(target_, EIO);
      written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd_) != 0) FailWrite(target_, errno);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) FailWrite(target_, errno);
  }

  // The temp name no longer exists (renamed onto the target): nothing to remove.
  void Published() { path_.clear(); }

 private:
  fs::path target_;
  std::string path_;
  int fd_ = -1;
};

// Moves `temp` to `target` unless `target` exists. Returns: whether it did.
bool PublishWithoutReplacing(TempFile& temp, const fs::path& target) {
  if (::renameat2(AT_FDCWD, temp.path().c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) == 0) {
    temp.Published();
    return true;
  }
  if (errno == EEXIST) return false;
  // File systems without RENAME_NOREPLACE (NFS, some FUSE) or kernels/sandboxes without
  // renameat2: link() is atomic and never replaces either. The temp name is removed by
  // TempFile's destructor once the file also has its final name.
  if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP && errno != EPERM) {
    FailWrite(target, errno);
  }
  if (::link(temp.path().c_str(), target.c_str()) == 0) return true;
  if (errno == EEXIST) return false;
  FailWrite(target, errno);
}

}  // namespace

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
  const Directory directory(path);
  TempFile temp(path);
  temp.Write(contents);
  if (std::rename(temp.path().c_str(), path.c_str()) != 0) FailWrite(path, errno);
  temp.Published();
  directory.Sync(path);
}

bool CreatePrivateFile(const std::filesystem::path& path, std::string_view contents) {
  const Directory directory(path);
  TempFile temp(path);
  temp.Write(contents);
  if (!PublishWithoutReplacing(temp, path)) return false;
  directory.Sync(path);
  return true;
}

}  // namespace courier::detail
